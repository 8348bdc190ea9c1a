/**
 * The host-disk floor. /workspace is a directory on the host's filesystem, and this host has no
 * per-directory quota to give each job (no project quotas; a loop-mounted image per job would
 * cost a mkfs on every job's start). So while a step runs, the filesystem holding the workspaces
 * is checked every second with one statfs(2) (no tree walk, nothing on the launch path), and a
 * step that brings free space or free inodes under the reserve is killed (a host already under it
 * holds each step to half of what was free when the step started); teardown then frees what it
 * wrote. The host's own services and the controller (its database, its logs) keep the
 * reserve whatever a job does.
 */
import { statfs } from "node:fs/promises";

export interface DiskReserve {
  /** Bytes available to unprivileged users that must stay free. */
  bytes: number;
  /** Inodes that must stay free. */
  inodes: number;
}

const GiB = 1024 ** 3;

/** 5% of the filesystem, at most 2 GiB (and 50 000 inodes): a floor that does not idle a big disk. */
export function defaultReserve(fs: { bsize: number; blocks: number; files: number }): DiskReserve {
  return {
    bytes: Math.min(2 * GiB, Math.floor(fs.blocks * fs.bsize * 0.05)),
    inodes: Math.min(50_000, Math.floor(fs.files * 0.05)),
  };
}

interface DiskReading {
  freeBytes: number;
  /** Undefined on filesystems without an inode table (btrfs, tmpfs without nr_inodes: files = 0). */
  freeInodes: number | undefined;
  reserve: DiskReserve;
}

async function readDisk(path: string, reserve?: Partial<DiskReserve>): Promise<DiskReading> {
  const fs = await statfs(path);
  return {
    freeBytes: fs.bavail * fs.bsize,
    freeInodes: fs.files > 0 ? fs.ffree : undefined,
    reserve: { ...defaultReserve(fs), ...reserve },
  };
}

/**
 * The floor one step is held to: the reserve, or half of what was free when the step started if
 * the host was already under the reserve then. A host that is short before the step runs is the
 * operator's to fix; killing every step for it would stop all CI, while a step that eats half of
 * what little is left is still stopped.
 */
export function stepFloor(
  start: Pick<DiskReading, "freeBytes" | "freeInodes">,
  reserve: DiskReserve,
): DiskReserve {
  const floor = (free: number, wanted: number) => (free >= wanted ? wanted : Math.floor(free / 2));
  return {
    bytes: floor(start.freeBytes, reserve.bytes),
    inodes: start.freeInodes === undefined ? 0 : floor(start.freeInodes, reserve.inodes),
  };
}

/** What is short, or undefined while the reading is above `floor`. */
function shortage(now: DiskReading, floor: DiskReserve): string | undefined {
  if (now.freeBytes < floor.bytes) {
    return `the filesystem holding the workspace has ${now.freeBytes} bytes free, under its reserve of ${floor.bytes}`;
  }
  if (now.freeInodes !== undefined && now.freeInodes < floor.inodes) {
    return `the filesystem holding the workspace has ${now.freeInodes} inodes free, under its reserve of ${floor.inodes}`;
  }
  return undefined;
}

/**
 * Calls `onLow` (once) when the filesystem under `path` goes under the step's floor (stepFloor,
 * from a reading taken now); returns the stop function. A failing statfs is not a shortage: the
 * guard must not kill steps on its own errors.
 */
export function watchDisk(
  path: string,
  onLow: (why: string) => void,
  reserve?: Partial<DiskReserve>,
  intervalMs = 1000,
): () => void {
  let busy = false;
  let fired = false;
  const floor = readDisk(path, reserve).then(
    (start) => stepFloor(start, start.reserve),
    () => undefined,
  );
  const timer = setInterval(() => {
    if (busy || fired) return;
    busy = true;
    Promise.all([floor, readDisk(path, reserve)])
      .then(([f, now]) => {
        const why = f && shortage(now, f);
        if (why && !fired) {
          fired = true;
          onLow(why);
        }
      })
      .catch(() => undefined)
      .finally(() => {
        busy = false;
      });
  }, intervalMs);
  timer.unref();
  return () => clearInterval(timer);
}
