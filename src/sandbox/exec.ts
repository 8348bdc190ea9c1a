/**
 * One step = one bwrap invocation, started by a launcher (./launcher.ts) that has joined the job's
 * cgroup: it execs setpriv (drop to the job uid, no_new_privs), which execs bwrap, so every
 * process of the step, bwrap included, is born inside the cgroup, with no window outside it.
 */
import type { Readable } from "node:stream";
import { AirlockError } from "../errors.js";
import {
  assertArgv,
  buildBwrapArgs,
  encodeArgs,
  etcFiles,
  type RootEntry,
  sandboxEnv,
  WORKSPACE,
} from "./bwrap-args.js";
import type { JobCgroup } from "./cgroups/index.js";
import { type DiskReserve, watchDisk } from "./disk-guard.js";
import { BWRAP, SETPRIV } from "./host.js";
import { ETC_FDS, FD_ARGS, FD_RESOLV, FD_SECCOMP, type Launcher } from "./launcher.js";
import { jobSeccompFilter } from "./seccomp/index.js";
import type { ExecRequest, ExecResult, OutputSink, SandboxNetwork } from "./types.js";

export interface StepContext {
  jobId: string;
  uid: number;
  workspaceDir: string;
  cgroup: JobCgroup;
  rootEntries: RootEntry[];
  network?: SandboxNetwork;
  /** Size cap of the step's /tmp (see BwrapArgsInput.tmpBytes). */
  tmpBytes?: number;
  /** Free space and inodes the workspace filesystem keeps; see ./disk-guard.ts. */
  diskReserve?: Partial<DiskReserve>;
}

/** Kills the step's whole tree; set by the caller so destroy() can interrupt a running step. */
export type Interrupt = (reason: "cancelled") => void;

const notStarted: ExecResult = {
  exitCode: null,
  signal: null,
  timedOut: false,
  cancelled: true,
  oomKilled: false,
  durationMs: 0,
};

/** The root command a launcher execs for a step: enter the job network, drop privileges, bwrap. */
export function stepCommand(uid: number, argv: readonly string[], network?: SandboxNetwork): string[] {
  const id = String(uid);
  return [
    ...(network?.enterArgv ?? []),
    SETPRIV,
    "--reuid",
    id,
    "--regid",
    id,
    "--clear-groups",
    "--no-new-privs",
    BWRAP,
    "--args",
    String(FD_ARGS),
    "--",
    ...argv,
  ];
}

/**
 * What a step's bwrap reads from its data descriptors: its options, the synthesized /etc,
 * resolv.conf, the seccomp filter.
 */
export function stepFeeds(
  bwrapArgs: string[],
  hostname: string,
  resolvConf?: string,
  seccompFilter?: Buffer,
): Map<number, string | Buffer> {
  const etc = etcFiles(hostname);
  const feeds = new Map<number, string | Buffer>([[FD_ARGS, encodeArgs(bwrapArgs)]]);
  for (const [name, fd] of Object.entries(ETC_FDS)) feeds.set(fd, etc[name as keyof typeof ETC_FDS]);
  if (resolvConf !== undefined) feeds.set(FD_RESOLV, resolvConf);
  if (seccompFilter !== undefined) feeds.set(FD_SECCOMP, seccompFilter);
  return feeds;
}

/** `launcher` has been told to join ctx.cgroup (it may still be on its way in). */
export async function runStep(
  ctx: StepContext,
  launcher: Launcher,
  req: ExecRequest,
  sink: OutputSink,
  onStart: (interrupt: Interrupt) => void,
): Promise<ExecResult> {
  assertArgv(req.argv);
  const started = performance.now();
  const bwrapArgs = buildBwrapArgs({
    hostname: ctx.jobId,
    workspaceDir: ctx.workspaceDir,
    rootEntries: ctx.rootEntries,
    etcFds: ETC_FDS,
    env: sandboxEnv(ctx.jobId, req.env),
    cwd: req.cwd ?? WORKSPACE,
    ...(ctx.network ? { resolvFd: FD_RESOLV } : {}),
    seccompFd: FD_SECCOMP,
    ...(ctx.tmpBytes !== undefined ? { tmpBytes: ctx.tmpBytes } : {}),
  });
  // A launcher that is not launched is retired by the caller (BwrapSandbox.exec).
  if (req.signal?.aborted) return notStarted;
  const oomBefore = await ctx.cgroup.oomKills();
  // Compiled once per process; every step gets the same bytes.
  const feeds = stepFeeds(bwrapArgs, ctx.jobId, ctx.network?.resolvConf, jobSeccompFilter());
  const child = launcher.launch(stepCommand(ctx.uid, req.argv, ctx.network), feeds);
  if (req.stdin && child.stdin) {
    // A step that exits without reading all of stdin is the step's business, not an error here.
    req.stdin.on("error", () => child.stdin?.destroy());
    req.stdin.pipe(child.stdin);
  } else {
    child.stdin?.end();
  }

  let timedOut = false;
  let cancelled = false;
  let failure: unknown;
  let killing: Promise<unknown> | undefined;
  const killTree = () => {
    // The cgroup holds the whole tree (bwrap, its init, daemons the step forked); bwrap's pid alone
    // would miss processes that left the step's process group.
    killing ??= ctx.cgroup.killAll().catch((e: unknown) => {
      failure ??= e;
    });
  };
  const timer =
    req.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          killTree();
        }, req.timeoutMs)
      : undefined;
  const onAbort = () => {
    cancelled = true;
    killTree();
  };
  req.signal?.addEventListener("abort", onAbort, { once: true });
  onStart(() => onAbort());
  const stopGuard = watchDisk(
    ctx.workspaceDir,
    (why) => {
      killTree();
      try {
        sink.write("stderr", Buffer.from(`\nairlock: step killed: ${why}\n`));
      } catch {
        // The kill is what matters; a sink that refuses the notice changes nothing.
      }
    },
    ctx.diskReserve,
  );

  const pump = (name: "stdout" | "stderr", stream: Readable) => {
    stream.on("data", (chunk: Buffer) => {
      try {
        sink.write(name, chunk);
        const wait = sink.ready?.();
        if (wait) {
          stream.pause();
          wait.then(
            () => stream.resume(),
            () => stream.resume(),
          );
        }
      } catch (e) {
        failure ??= e;
        killTree();
      }
    });
  };
  pump("stdout", child.stdout as Readable);
  pump("stderr", child.stderr as Readable);

  // Everything in the pid namespace dies with bwrap, so the pipes close promptly once it exits; if
  // some process still holds one, kill the cgroup rather than hang the step.
  let lingering: NodeJS.Timeout | undefined;
  let settled = false;
  void launcher.exited.then(() => {
    if (!settled) lingering = setTimeout(killTree, 2000);
  });
  let exitCode: number | null;
  let signal: string | null;
  try {
    ({ code: exitCode, signal } = await launcher.closed);
  } finally {
    settled = true;
    stopGuard();
    clearTimeout(lingering);
    if (timer) clearTimeout(timer);
    req.signal?.removeEventListener("abort", onAbort);
  }
  await killing;
  if (failure) throw failure;
  if (!launcher.joined) {
    throw new AirlockError(
      "SANDBOX_FAILED",
      `step did not start in the job cgroup: ${launcher.statusText.trim() || "launcher died"}`,
      {
        hint: "check that the job cgroup still exists and /sys/fs/cgroup is writable by root",
        details: { jobId: ctx.jobId },
      },
    );
  }
  const oomKilled = (await ctx.cgroup.oomKills()) > oomBefore;
  return {
    exitCode,
    signal,
    timedOut,
    cancelled,
    oomKilled,
    durationMs: Math.round(performance.now() - started),
  };
}
