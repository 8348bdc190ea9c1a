import { AirlockError } from "../errors.js";

/**
 * Hands each running job its own unprivileged host uid, so two jobs never share a uid and one
 * cannot touch the other's files even where paths leak.
 */
export class UidPool {
  private readonly inUse = new Set<number>();
  private next = 0;

  constructor(
    private readonly base: number,
    private readonly count: number,
  ) {}

  acquire(): number {
    for (let i = 0; i < this.count; i++) {
      const uid = this.base + ((this.next + i) % this.count);
      if (!this.inUse.has(uid)) {
        this.inUse.add(uid);
        this.next = (this.next + i + 1) % this.count;
        return uid;
      }
    }
    throw new AirlockError("SANDBOX_UNAVAILABLE", `all ${this.count} sandbox uids are in use`, {
      hint: "raise sandbox.uidCount or lower scheduler.concurrency",
    });
  }

  release(uid: number): void {
    this.inUse.delete(uid);
  }
}
