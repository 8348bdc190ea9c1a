import { closeSync, mkdirSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { join } from "node:path";
import { AirlockError } from "../errors.js";

/** Host-wide: every Airlock controller on this host claims its job uids here. Cleared at boot. */
export const defaultUidLockDir = "/run/airlock/uids";

/**
 * Hands each running job its own unprivileged host uid, so two jobs never share a uid and one
 * cannot touch the other's files even where paths leak. A uid is claimed with an exclusive lock
 * file holding the owner's pid, so two controllers on one host (two data directories, a test
 * beside a server) never hand out the same uid; a claim whose pid is gone is stale and reused.
 */
export class UidPool {
  private readonly mine = new Set<number>();
  private next = 0;

  constructor(
    private readonly base: number,
    private readonly count: number,
    private readonly lockDir: string = defaultUidLockDir,
  ) {
    mkdirSync(lockDir, { recursive: true, mode: 0o700 });
  }

  acquire(): number {
    for (let i = 0; i < this.count; i++) {
      const uid = this.base + ((this.next + i) % this.count);
      if (!this.mine.has(uid) && this.claim(uid)) {
        this.mine.add(uid);
        this.next = (this.next + i + 1) % this.count;
        return uid;
      }
    }
    throw new AirlockError("SANDBOX_UNAVAILABLE", `all ${this.count} sandbox uids are in use`, {
      hint: "raise sandbox.uidCount or lower scheduler.concurrency",
    });
  }

  release(uid: number): void {
    if (!this.mine.delete(uid)) return;
    rmSync(join(this.lockDir, String(uid)), { force: true });
  }

  private claim(uid: number): boolean {
    const file = join(this.lockDir, String(uid));
    for (let attempt = 0; attempt < 2; attempt++) {
      try {
        const fd = openSync(file, "wx", 0o600);
        writeSync(fd, String(process.pid));
        closeSync(fd);
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
        if (ownerAlive(file)) return false;
        rmSync(file, { force: true });
      }
    }
    return false;
  }
}

function ownerAlive(file: string): boolean {
  let pid: number;
  try {
    pid = Number(readFileSync(file, "utf8"));
  } catch {
    return false;
  }
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
