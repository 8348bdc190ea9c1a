/**
 * Which cgroup version to drive, decided at runtime from the mount table. A hybrid host (v1
 * controllers plus an empty cgroup2 at /sys/fs/cgroup/unified) is treated as v1, because v2 is
 * only usable when its hierarchy actually owns the memory, pids and cpu controllers.
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { AirlockError } from "../../errors.js";

export const REQUIRED_CONTROLLERS = ["memory", "pids", "cpu"] as const;

export interface MountEntry {
  mountPoint: string;
  fsType: string;
  options: string[];
}

export interface V1Mounts {
  memory: string;
  pids: string;
  cpu: string;
  freezer?: string;
}

export type CgroupLayout = { version: 2; mount: string } | { version: 1; mounts: V1Mounts };

export type Detection = CgroupLayout | { version: "none"; reason: string };

/** /proc/self/mounts format; octal escapes (\040 for space) are decoded. */
export function parseMounts(text: string): MountEntry[] {
  const decode = (s: string) =>
    s.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8)));
  const out: MountEntry[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 4) continue;
    out.push({
      mountPoint: decode(f[1] as string),
      fsType: f[2] as string,
      options: (f[3] as string).split(","),
    });
  }
  return out;
}

/**
 * Pure decision. `controllersOf(mountPoint)` returns the root `cgroup.controllers` of a cgroup2
 * mount (or undefined if unreadable).
 */
export function detectLayout(
  mounts: MountEntry[],
  controllersOf: (mountPoint: string) => string[] | undefined,
): Detection {
  const problems: string[] = [];
  const v2 = mounts
    .filter((m) => m.fsType === "cgroup2")
    // Prefer the canonical location when several cgroup2 mounts exist.
    .sort((a, b) => Number(b.mountPoint === "/sys/fs/cgroup") - Number(a.mountPoint === "/sys/fs/cgroup"));
  for (const m of v2) {
    const have = controllersOf(m.mountPoint) ?? [];
    const missing = REQUIRED_CONTROLLERS.filter((c) => !have.includes(c));
    if (missing.length === 0) return { version: 2, mount: m.mountPoint };
    problems.push(`cgroup v2 at ${m.mountPoint} lacks the ${missing.join(", ")} controller(s)`);
  }
  const v1 = mounts.filter((m) => m.fsType === "cgroup");
  const find = (c: string) => v1.find((m) => m.options.includes(c))?.mountPoint;
  const memory = find("memory");
  const pids = find("pids");
  const cpu = find("cpu");
  if (memory && pids && cpu) {
    const freezer = find("freezer");
    return { version: 1, mounts: freezer ? { memory, pids, cpu, freezer } : { memory, pids, cpu } };
  }
  if (v1.length > 0) {
    const missing = Object.entries({ memory, pids, cpu })
      .filter(([, v]) => !v)
      .map(([k]) => k);
    problems.push(`cgroup v1 has no ${missing.join(", ")} hierarchy mounted`);
  }
  if (problems.length === 0) problems.push("no cgroup filesystem is mounted");
  return { version: "none", reason: problems.join("; ") };
}

export async function detectCgroups(mountsFile = "/proc/self/mounts"): Promise<CgroupLayout> {
  const mounts = parseMounts(await readFile(mountsFile, "utf8"));
  const controllers = new Map<string, string[]>();
  for (const m of mounts.filter((x) => x.fsType === "cgroup2")) {
    try {
      controllers.set(
        m.mountPoint,
        (await readFile(join(m.mountPoint, "cgroup.controllers"), "utf8")).trim().split(/\s+/),
      );
    } catch {
      // unreadable: treated as having no controllers
    }
  }
  const d = detectLayout(mounts, (mp) => controllers.get(mp));
  if (d.version === "none") {
    throw new AirlockError("SANDBOX_UNAVAILABLE", `cgroups are unusable: ${d.reason}`, {
      hint: "mount cgroup v2 at /sys/fs/cgroup with the memory, pids and cpu controllers (systemd does this by default), or mount the v1 memory, pids and cpu hierarchies",
    });
  }
  return d;
}
