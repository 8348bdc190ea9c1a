/**
 * Host-side process discovery by scanning /proc. The cgroup is the primary handle on a job's
 * processes; these scans are the second net (per-job uid) and the reaper's way to find bwrap
 * processes a crashed predecessor started before they joined a cgroup.
 */
import { readdir, readFile } from "node:fs/promises";
import { isErrno, killPids, sleep } from "./cgroups/fs.js";

async function allPids(): Promise<number[]> {
  const names = await readdir("/proc");
  return names.filter((n) => /^\d+$/.test(n)).map(Number);
}

/** Live (non-zombie) processes whose real, effective, saved or filesystem uid is `uid`. */
export async function pidsOfUid(uid: number): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await allPids()) {
    try {
      const status = await readFile(`/proc/${pid}/status`, "utf8");
      const lines = status.split("\n");
      // Zombies hold no resources and vanish once their parent reaps them.
      if (lines.find((l) => l.startsWith("State:"))?.includes("Z")) continue;
      const line = lines.find((l) => l.startsWith("Uid:"));
      if (line?.split(/\s+/).slice(1).map(Number).includes(uid)) out.push(pid);
    } catch (e) {
      if (!isErrno(e, "ENOENT", "ESRCH", "EACCES")) throw e;
    }
  }
  return out;
}

/** Processes whose initial environment contains exactly `entry` (e.g. `AIRLOCK_SANDBOX_ROOT=/x`). */
export async function pidsWithEnv(entry: string): Promise<number[]> {
  const out: number[] = [];
  for (const pid of await allPids()) {
    if (pid === process.pid) continue;
    try {
      const env = await readFile(`/proc/${pid}/environ`, "utf8");
      if (env.split("\0").includes(entry)) out.push(pid);
    } catch (e) {
      if (!isErrno(e, "ENOENT", "ESRCH", "EACCES")) throw e;
    }
  }
  return out;
}

/** SIGKILL whatever `find` returns until it returns nothing or the deadline passes. */
export async function killUntilGone(find: () => Promise<number[]>, deadlineMs = 3000): Promise<number> {
  const until = Date.now() + deadlineMs;
  let n = 0;
  for (;;) {
    const pids = await find();
    if (pids.length === 0 || Date.now() > until) return n;
    n += killPids(pids);
    await sleep(20);
  }
}
