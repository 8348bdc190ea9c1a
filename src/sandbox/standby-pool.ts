/**
 * Standby slots: fresh, still unlimited cgroups, each already holding a launcher that has joined
 * it. A new job claims one (the cgroup gets the job's name and limits), so its first step neither
 * forks the controller nor migrates into a cgroup on the job's critical path. The pool refills
 * shortly after a slot is taken, off that path. It is an optimization only: when it is empty or
 * cannot fill, jobs take the direct route.
 */
import { randomBytes } from "node:crypto";
import type { CgroupBackend } from "./cgroups/index.js";
import { Launcher } from "./launcher.js";

export interface StandbySlot {
  /** The slot's cgroup name under the driver's parent. */
  name: string;
  launcher: Launcher;
}

/** Slot cgroups are recognisable in `ls /sys/fs/cgroup/…/<parent>` and to the reaper (which removes everything there). */
export const STANDBY_PREFIX = "standby-";

export class StandbyPool {
  private readonly ready: StandbySlot[] = [];
  private timer: NodeJS.Timeout | undefined;
  private filling: Promise<void> | undefined;
  private closed = false;

  constructor(
    private readonly backend: () => Promise<CgroupBackend>,
    private readonly launcherEnv: Record<string, string>,
    private readonly size: number,
    /** Refill after the taker's own launch work, not in the middle of it (a spawn blocks the event loop). */
    private readonly refillDelayMs = 25,
  ) {}

  /**
   * A slot whose launcher stands inside its cgroup, or undefined; either way the pool refills
   * afterwards. A launcher still on its way in is left for later: claiming renames the cgroup, and
   * a join that comes after the rename would find the old path gone.
   */
  take(): StandbySlot | undefined {
    this.scheduleFill();
    for (let i = 0; i < this.ready.length; ) {
      const slot = this.ready[i] as StandbySlot;
      if (!slot.launcher.standing) {
        this.ready.splice(i, 1);
        void this.discard(slot).catch(() => undefined);
      } else if (slot.launcher.joined) {
        this.ready.splice(i, 1);
        return slot;
      } else {
        i++;
      }
    }
    return undefined;
  }

  /** Retires every standing launcher and removes the slots' cgroups. */
  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.filling;
    for (const slot of this.ready.splice(0)) await this.discard(slot);
  }

  /** Removes a slot that will not be used (its launcher dies with the cgroup). */
  async discard(slot: StandbySlot): Promise<void> {
    slot.launcher.retire();
    await (await this.backend()).open(slot.name).remove();
  }

  private scheduleFill(): void {
    if (this.closed || this.size <= 0 || this.timer || this.filling) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.filling = this.fill().finally(() => {
        this.filling = undefined;
      });
    }, this.refillDelayMs);
    this.timer.unref();
  }

  private async fill(): Promise<void> {
    while (!this.closed && this.ready.length < this.size) {
      let name: string | undefined;
      try {
        const backend = await this.backend();
        name = `${STANDBY_PREFIX}${randomBytes(6).toString("hex")}`;
        const cgroup = await backend.create(name);
        this.ready.push({ name, launcher: new Launcher(this.launcherEnv).join(cgroup.procsFiles) });
      } catch {
        // Jobs will take the direct route, which reports whatever is wrong with cgroups properly.
        if (name)
          await (await this.backend())
            .open(name)
            .remove()
            .catch(() => undefined);
        return;
      }
    }
  }
}
