/**
 * cgroup v1: one directory per controller hierarchy (memory, pids, cpu, freezer if present).
 * A step process joins all of them; memory+swap is capped at the memory limit so the limit
 * cannot be dodged by swapping.
 */
import { mkdir, rename } from "node:fs/promises";
import { join } from "node:path";
import { AirlockError } from "../../errors.js";
import type { SandboxLimits } from "../types.js";
import type { V1Mounts } from "./detect.js";
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

/** systemd's mapping: weight 100 (v2 default) is 1024 shares (v1 default), clamped to v1's range. */
export function weightToShares(weight: number): number {
  return Math.min(262144, Math.max(2, Math.round((weight * 1024) / 100)));
}

export function createV1Backend(mounts: V1Mounts, parent: string): CgroupBackend {
  const hierarchies = (): string[] => {
    const h = [mounts.memory, mounts.pids, mounts.cpu];
    if (mounts.freezer) h.push(mounts.freezer);
    return [...new Set(h)];
  };
  const dirsOf = (name: string) => hierarchies().map((m) => join(m, parent, name));

  function open(name: string): JobCgroup {
    const memDir = join(mounts.memory, parent, name);
    const freezerDir = mounts.freezer ? join(mounts.freezer, parent, name) : undefined;
    const procsFiles = dirsOf(name).map((d) => join(d, "cgroup.procs"));
    const pids = async () => {
      const all = new Set<number>();
      for (const f of procsFiles) for (const p of await readPids(f)) all.add(p);
      return [...all];
    };
    const setFreezer = async (state: "FROZEN" | "THAWED") => {
      if (!freezerDir || !(await fileExists(join(freezerDir, "freezer.state")))) return;
      await writeControl(join(freezerDir, "freezer.state"), state);
      if (state === "THAWED") return;
      // FREEZING can take a moment; a partial freeze still shrinks the fork race, so don't insist.
      for (let i = 0; i < 50; i++) {
        if ((await readText(join(freezerDir, "freezer.state")))?.trim() === "FROZEN") return;
        await sleep(5);
      }
    };
    const handle: JobCgroup = {
      name,
      procsFiles,
      async oomKills() {
        const kills = await readKeyed(join(memDir, "memory.oom_control"), "oom_kill");
        if (kills !== undefined) return kills;
        // Kernels before 4.13 lack the oom_kill counter; hitting the limit is the best signal left.
        return Number((await readText(join(memDir, "memory.failcnt")))?.trim() ?? 0);
      },
      pids,
      killAll: () =>
        killCgroup(
          { pids, freeze: () => setFreezer("FROZEN"), thaw: () => setFreezer("THAWED") },
          join(parent, name),
        ),
      async remove() {
        await handle.killAll();
        for (const d of dirsOf(name)) await removeCgroupDir(d);
      },
    };
    return handle;
  }

  async function limit(name: string, limits: SandboxLimits): Promise<void> {
    const mem = join(mounts.memory, parent, name);
    // memsw must stay >= the memory limit, so set memory first (a slot starts unlimited).
    await writeControl(join(mem, "memory.limit_in_bytes"), String(limits.memoryBytes));
    if (await fileExists(join(mem, "memory.memsw.limit_in_bytes"))) {
      await writeControl(join(mem, "memory.memsw.limit_in_bytes"), String(limits.memoryBytes));
    }
    await writeControl(join(mounts.pids, parent, name, "pids.max"), String(limits.pids));
    await writeControl(
      join(mounts.cpu, parent, name, "cpu.shares"),
      String(weightToShares(limits.cpuWeight)),
    );
  }

  const taken = (name: string) =>
    new AirlockError("SANDBOX_FAILED", `cgroup ${join(parent, name)} already exists`, {
      hint: "a sandbox for this job id is alive or was left by a crash; destroy it or run the reaper",
    });

  return {
    version: 1,
    async check() {
      for (const h of hierarchies()) {
        try {
          await mkdir(join(h, parent), { recursive: true });
        } catch (e) {
          throw new AirlockError(
            "SANDBOX_UNAVAILABLE",
            `cannot create cgroup ${join(h, parent)}: ${String(e)}`,
            {
              hint: "Airlock must run as root with /sys/fs/cgroup mounted read-write",
              cause: e,
            },
          );
        }
      }
    },
    async create(name, limits?: SandboxLimits) {
      const created: string[] = [];
      try {
        for (const d of dirsOf(name)) {
          await mkdir(join(d, ".."), { recursive: true });
          await mkdir(d);
          created.push(d);
        }
      } catch (e) {
        // Undo only what we made: an existing directory may belong to a live sandbox.
        for (const d of created) await removeCgroupDir(d).catch(() => undefined);
        if (isErrno(e, "EEXIST")) throw taken(name);
        throw e;
      }
      if (limits) await limit(name, limits);
      return open(name);
    },
    async claim(slot, jobId, limits) {
      // v1 renames within a hierarchy (v2 does not), so the job's cgroup carries its id on this host
      // too. The processes already inside stay put: renaming is not a migration.
      const renamed: [string, string][] = [];
      try {
        for (const m of hierarchies()) {
          const from = join(m, parent, slot);
          const to = join(m, parent, jobId);
          await rename(from, to);
          renamed.push([from, to]);
        }
      } catch (e) {
        for (const [from, to] of renamed) await rename(to, from).catch(() => undefined);
        if (isErrno(e, "EEXIST", "ENOTEMPTY")) throw taken(jobId);
        throw e;
      }
      try {
        await limit(jobId, limits);
      } catch (e) {
        // Back under the slot's name, so whoever discards the slot removes this cgroup too.
        for (const [from, to] of renamed) await rename(to, from).catch(() => undefined);
        throw e;
      }
      return open(jobId);
    },
    open,
    async list() {
      const names = new Set<string>();
      for (const h of hierarchies()) for (const n of await subdirs(join(h, parent))) names.add(n);
      return [...names];
    },
    async removeParent() {
      for (const h of hierarchies()) await rmdirIfEmpty(join(h, parent));
    },
  };
}
