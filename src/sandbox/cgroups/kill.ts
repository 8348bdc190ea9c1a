import { AirlockError } from "../../errors.js";
import { killPids, sleep } from "./fs.js";

export interface KillOps {
  pids(): Promise<number[]>;
  /** Atomic whole-cgroup kill (v2 cgroup.kill); when present, used instead of per-pid kills. */
  killAtomic?: () => Promise<void>;
  /** Freeze so nothing can fork between listing and killing; thaw lets the SIGKILLs land. */
  freeze?: () => Promise<void>;
  thaw?: () => Promise<void>;
}

/**
 * Kill everything in a cgroup and wait until it is empty. Bounded: a process that survives
 * `deadlineMs` (e.g. stuck in uninterruptible sleep) is reported rather than waited for forever.
 */
export async function killCgroup(ops: KillOps, where: string, deadlineMs = 5000): Promise<number> {
  const until = Date.now() + deadlineMs;
  let signalled = 0;
  for (;;) {
    const pids = await ops.pids();
    if (pids.length === 0) return signalled;
    if (Date.now() > until) {
      throw new AirlockError(
        "SANDBOX_FAILED",
        `processes ${pids.join(", ")} survived SIGKILL in cgroup ${where}`,
        {
          hint: "they are probably in uninterruptible I/O; check `cat /proc/<pid>/stack` and retry teardown",
        },
      );
    }
    if (ops.killAtomic) {
      await ops.killAtomic();
      signalled += pids.length;
    } else {
      await ops.freeze?.();
      try {
        signalled += killPids(await ops.pids());
      } finally {
        await ops.thaw?.();
      }
    }
    // Give the kernel and our own child reaping a moment before re-listing.
    await sleep(10);
  }
}
