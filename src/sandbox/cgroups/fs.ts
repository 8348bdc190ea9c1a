import { readdir, readFile, rmdir, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { AirlockError } from "../../errors.js";

export { sleep };

export function isErrno(e: unknown, ...codes: string[]): boolean {
  return typeof e === "object" && e !== null && codes.includes((e as NodeJS.ErrnoException).code ?? "");
}

export async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, "utf8");
  } catch (e) {
    if (isErrno(e, "ENOENT", "ENODEV")) return undefined;
    throw e;
  }
}

/** Value of `key N` in a flat-keyed file such as memory.events or memory.oom_control. */
export async function readKeyed(path: string, key: string): Promise<number | undefined> {
  const text = await readText(path);
  if (text === undefined) return undefined;
  for (const line of text.split("\n")) {
    const [k, v] = line.trim().split(/\s+/);
    if (k === key && v !== undefined) return Number(v);
  }
  return undefined;
}

export async function readPids(procsFile: string): Promise<number[]> {
  const text = await readText(procsFile);
  if (!text) return [];
  return text
    .split("\n")
    .filter((l) => l.trim() !== "")
    .map(Number);
}

export async function writeControl(path: string, value: string): Promise<void> {
  try {
    await writeFile(path, value);
  } catch (e) {
    throw new AirlockError(
      "SANDBOX_FAILED",
      `cannot write ${JSON.stringify(value)} to ${path}: ${String(e)}`,
      {
        hint: "Airlock must run as root with the cgroup filesystem mounted read-write",
        cause: e,
      },
    );
  }
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

export async function subdirs(dir: string): Promise<string[]> {
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return [];
    throw e;
  }
}

/**
 * rmdir a cgroup and any children, deepest first. EBUSY means a task (often a zombie its parent
 * has not reaped yet) is still inside, so retry briefly before giving up.
 */
export async function removeCgroupDir(dir: string, deadlineMs = 5000): Promise<void> {
  for (const child of await subdirs(dir)) await removeCgroupDir(join(dir, child), deadlineMs);
  const until = Date.now() + deadlineMs;
  for (;;) {
    try {
      await rmdir(dir);
      return;
    } catch (e) {
      if (isErrno(e, "ENOENT")) return;
      if (!isErrno(e, "EBUSY") || Date.now() > until) {
        throw new AirlockError("SANDBOX_FAILED", `cannot remove cgroup ${dir}: ${String(e)}`, {
          hint: "a process is still inside; run `airlock` again to reap, or check `cat cgroup.procs` there",
          cause: e,
        });
      }
      await sleep(20);
    }
  }
}

/** Send SIGKILL to each pid, ignoring ones that are already gone. */
export function killPids(pids: number[]): number {
  let n = 0;
  for (const pid of pids) {
    if (!Number.isInteger(pid) || pid <= 1) continue;
    try {
      process.kill(pid, "SIGKILL");
      n++;
    } catch (e) {
      if (!isErrno(e, "ESRCH")) throw e;
    }
  }
  return n;
}

/** Removes an empty parent cgroup; one still holding jobs (or already gone) is left as it is. */
export async function rmdirIfEmpty(dir: string): Promise<void> {
  try {
    await rmdir(dir);
  } catch (e) {
    if (!isErrno(e, "ENOENT", "ENOTEMPTY", "EBUSY", "EEXIST")) throw e;
  }
}
