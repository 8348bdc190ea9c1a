/**
 * cgroup v2: one directory under <mount>/<parent>. Controllers must be enabled in every
 * ancestor's cgroup.subtree_control; the parent holds no processes so that is allowed.
 */
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { AirlockError } from "../../errors.js";
import type { SandboxLimits } from "../types.js";
import { REQUIRED_CONTROLLERS } from "./detect.js";
import {
  fileExists,
  isErrno,
  readKeyed,
  readPids,
  readText,
  removeCgroupDir,
  rmdirIfEmpty,
  sleep,
  subdirs,
  writeControl,
} from "./fs.js";
import { killCgroup } from "./kill.js";
import type { CgroupBackend, JobCgroup } from "./types.js";

async function enableControllers(dir: string): Promise<void> {
  const enabled = ((await readText(join(dir, "cgroup.subtree_control"))) ?? "").trim().split(/\s+/);
  const missing = REQUIRED_CONTROLLERS.filter((c) => !enabled.includes(c));
  if (missing.length > 0)
    await writeControl(join(dir, "cgroup.subtree_control"), missing.map((c) => `+${c}`).join(" "));
}

async function limit(dir: string, limits: SandboxLimits): Promise<void> {
  await writeControl(join(dir, "memory.max"), String(limits.memoryBytes));
  if (await fileExists(join(dir, "memory.swap.max"))) await writeControl(join(dir, "memory.swap.max"), "0");
  await writeControl(join(dir, "pids.max"), String(limits.pids));
  await writeControl(join(dir, "cpu.weight"), String(limits.cpuWeight));
}

export function createV2Backend(mount: string, parent: string): CgroupBackend {
  const parentDir = join(mount, parent);

  function open(name: string): JobCgroup {
    const dir = join(parentDir, name);
    const pids = () => readPids(join(dir, "cgroup.procs"));
    const handle: JobCgroup = {
      name,
      procsFiles: [join(dir, "cgroup.procs")],
      async oomKills() {
        return (await readKeyed(join(dir, "memory.events"), "oom_kill")) ?? 0;
      },
      pids,
      async killAll() {
        if (await fileExists(join(dir, "cgroup.kill"))) {
          return killCgroup({ pids, killAtomic: () => writeControl(join(dir, "cgroup.kill"), "1") }, dir);
        }
        // Before Linux 5.14: freeze, kill each, thaw.
        const freeze = async (on: boolean) => {
          if (!(await fileExists(join(dir, "cgroup.freeze")))) return;
          await writeControl(join(dir, "cgroup.freeze"), on ? "1" : "0");
          for (let i = 0; on && i < 50; i++) {
            if ((await readKeyed(join(dir, "cgroup.events"), "frozen")) === 1) return;
            await sleep(5);
          }
        };
        return killCgroup({ pids, freeze: () => freeze(true), thaw: () => freeze(false) }, dir);
      },
      async remove() {
        await handle.killAll();
        await removeCgroupDir(dir);
      },
    };
    return handle;
  }

  return {
    version: 2,
    async check() {
      try {
        await enableControllers(mount);
        await mkdir(parentDir, { recursive: true });
        await enableControllers(parentDir);
      } catch (e) {
        throw new AirlockError("SANDBOX_UNAVAILABLE", `cannot prepare cgroup ${parentDir}: ${String(e)}`, {
          hint:
            "Airlock must run as root with /sys/fs/cgroup writable and the memory, pids and cpu controllers delegated; " +
            "inside a container, move its processes out of the cgroup root first (EBUSY means processes live there)",
          cause: e,
        });
      }
    },
    async create(name, limits?: SandboxLimits) {
      await enableControllers(mount);
      await mkdir(parentDir, { recursive: true });
      await enableControllers(parentDir);
      const dir = join(parentDir, name);
      try {
        await mkdir(dir);
      } catch (e) {
        if (isErrno(e, "EEXIST")) {
          throw new AirlockError("SANDBOX_FAILED", `cgroup ${dir} already exists`, {
            hint: "a sandbox for this job id is alive or was left by a crash; destroy it or run the reaper",
          });
        }
        throw e;
      }
      if (limits) await limit(dir, limits);
      return open(name);
    },
    async claim(slot, _jobId, limits) {
      // cgroup v2 refuses rename(2), so the job keeps the slot's directory name; the job id is in
      // the sandbox's records and the hostname instead.
      await limit(join(parentDir, slot), limits);
      return open(slot);
    },
    open,
    list: () => subdirs(parentDir),
    removeParent: () => rmdirIfEmpty(parentDir),
  };
}
