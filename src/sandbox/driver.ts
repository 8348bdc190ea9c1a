import { resolve } from "node:path";
import { AirlockError } from "../errors.js";
import type { RootEntry } from "./bwrap-args.js";
import { type CgroupBackend, type JobCgroup, openCgroups } from "./cgroups/index.js";
import { type Interrupt, runStep, type StepContext } from "./exec.js";
import { probeRootEntries, WRAPPER_PATH } from "./host.js";
import { Launcher, SANDBOX_MARKER as MARKER } from "./launcher.js";
import { preflight } from "./preflight.js";
import { killUntilGone, pidsOfUid } from "./process-tree.js";
import { reap } from "./reaper.js";
import { StandbyPool } from "./standby-pool.js";
import type {
  BwrapDriverOptions,
  ExecRequest,
  ExecResult,
  OutputSink,
  Sandbox,
  SandboxDriver,
  SandboxNetwork,
  SandboxSpec,
} from "./types.js";
import { assertSpec } from "./validate.js";
import { ensureRoot, prepareWorkspace, type RootDir, wipeDir } from "./workspace.js";

class BwrapSandbox implements Sandbox {
  private running: Interrupt | undefined;
  private destroying: Promise<void> | undefined;

  constructor(
    readonly jobId: string,
    readonly workspaceDir: string,
    private readonly uid: number,
    private readonly root: RootDir,
    private readonly cgroup: JobCgroup,
    private readonly rootEntries: RootEntry[],
    private readonly wrapperEnv: Record<string, string>,
    private readonly network: SandboxNetwork | undefined,
    private readonly extra: Pick<StepContext, "tmpBytes" | "diskReserve">,
    private readonly release: () => void,
    /** Already told to join this sandbox's cgroup; the next step starts from it. */
    private next: Launcher | undefined,
  ) {}

  /** A launcher inside this sandbox's cgroup: the one made ready beforehand, or a new one. */
  private takeLauncher(): Launcher {
    const ready = this.next;
    this.next = undefined;
    if (ready?.standing) return ready;
    ready?.retire();
    return this.newLauncher();
  }

  private newLauncher(): Launcher {
    return new Launcher(this.wrapperEnv).join(this.cgroup.procsFiles);
  }

  async exec(req: ExecRequest, sink: OutputSink): Promise<ExecResult> {
    if (this.destroying) {
      throw new AirlockError("SANDBOX_FAILED", `sandbox ${this.jobId} is destroyed`, {
        hint: "create a new sandbox for the job",
      });
    }
    // Steps run one at a time: a timeout kills the whole job cgroup, and OOM is attributed per step.
    if (this.running) {
      throw new AirlockError("SANDBOX_FAILED", `sandbox ${this.jobId} is already running a step`, {
        hint: "await the previous exec() before starting the next step",
      });
    }
    this.running = () => undefined;
    let clean = false;
    const launcher = this.takeLauncher();
    try {
      const result = await runStep(
        {
          jobId: this.jobId,
          uid: this.uid,
          workspaceDir: this.workspaceDir,
          cgroup: this.cgroup,
          rootEntries: this.rootEntries,
          ...(this.network ? { network: this.network } : {}),
          ...this.extra,
        },
        launcher,
        req,
        sink,
        (interrupt) => {
          this.running = interrupt;
          // The next step's launcher joins the cgroup while this step runs. Deferred a turn so
          // its spawn (which blocks the event loop) comes after this step's launch.
          if (req.expectMore) {
            setImmediate(() => {
              if (!this.destroying && !this.next) this.next = this.newLauncher();
            });
          }
        },
      );
      clean = !result.timedOut && !result.cancelled;
      return result;
    } finally {
      this.running = undefined;
      // Refused before launch (e.g. a NUL in its env): the launcher must not linger in the cgroup.
      launcher.retire();
      // A step that was killed took everything in the cgroup with it, the next launcher included.
      if (!clean) this.dropNext();
    }
  }

  private dropNext(): void {
    this.next?.retire();
    this.next = undefined;
  }

  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    this.running?.("cancelled");
    this.dropNext();
    try {
      await this.cgroup.remove();
    } finally {
      // Second net: nothing may keep running as the job uid, whatever cgroup it sits in. It runs
      // even when the cgroup would not go (a process stuck in the kernel), and before the wipe.
      await killUntilGone(() => pidsOfUid(this.uid));
      try {
        await wipeDir(this.root, this.workspaceDir);
      } finally {
        // A failed wipe leaves a root-owned 0700 directory (see wipeDir): the uid may be reused.
        this.release();
      }
    }
  }
}

export function createBwrapDriver(opts: BwrapDriverOptions): SandboxDriver {
  const cgroupName = opts.cgroupName ?? "airlock";
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(cgroupName)) {
    throw new AirlockError("CONFIG_INVALID", `invalid sandbox cgroup name ${JSON.stringify(cgroupName)}`, {
      hint: "use letters, digits, '.', '_' and '-'",
    });
  }
  const givenRoot = resolve(opts.rootDir);
  const wrapperEnv = { PATH: WRAPPER_PATH, [MARKER]: givenRoot };
  let backend: Promise<CgroupBackend> | undefined;
  const cgroups = () => {
    backend ??= openCgroups(cgroupName);
    return backend;
  };
  let rootEntries: Promise<RootEntry[]> | undefined;
  const pool = new StandbyPool(cgroups, wrapperEnv, opts.standbySlots ?? 1);
  // Live sandboxes of this driver, by job id and by uid: both must be unique while running.
  const live = new Map<string, number>();

  return {
    preflight: () => preflight(cgroups),

    async close() {
      await pool.close();
      if (backend) await (await backend).removeParent();
    },

    async create(spec: SandboxSpec): Promise<Sandbox> {
      assertSpec(spec);
      if (live.has(spec.jobId) || [...live.values()].includes(spec.uid)) {
        throw new AirlockError(
          "SANDBOX_FAILED",
          `job ${spec.jobId} or uid ${spec.uid} already has a live sandbox`,
          {
            hint: "each concurrent job needs its own job id and its own uid",
          },
        );
      }
      live.set(spec.jobId, spec.uid);
      try {
        const backendNow = await cgroups();
        const root = await ensureRoot(givenRoot);
        const workspaceDir = await prepareWorkspace(root, spec.workspaceDir, spec.uid);
        let cgroup: JobCgroup;
        let launcher: Launcher | undefined;
        try {
          const slot = pool.take();
          if (slot) {
            try {
              cgroup = await backendNow.claim(slot.name, spec.jobId, spec.limits);
              launcher = slot.launcher;
            } catch {
              // The direct route below reports a taken job id or a cgroup problem properly.
              await pool.discard(slot).catch(() => undefined);
            }
          }
          cgroup ??= await backendNow.create(spec.jobId, spec.limits);
        } catch (e) {
          await wipeDir(root, workspaceDir).catch(() => undefined);
          throw e;
        }
        rootEntries ??= probeRootEntries();
        return new BwrapSandbox(
          spec.jobId,
          workspaceDir,
          spec.uid,
          root,
          cgroup,
          await rootEntries,
          wrapperEnv,
          spec.network,
          {
            tmpBytes: Math.floor(spec.limits.memoryBytes / 2),
            ...(opts.diskReserve ? { diskReserve: opts.diskReserve } : {}),
          },
          () => live.delete(spec.jobId),
          launcher,
        );
      } catch (e) {
        live.delete(spec.jobId);
        throw e;
      }
    },

    async reap() {
      const root = await ensureRoot(givenRoot);
      return reap(await cgroups(), root, `${MARKER}=${givenRoot}`);
    },
  };
}
