import { type CgroupLayout, detectCgroups } from "./detect.js";
import type { CgroupBackend } from "./types.js";
import { createV1Backend } from "./v1.js";
import { createV2Backend } from "./v2.js";

export type { CgroupLayout } from "./detect.js";
export type { CgroupBackend, JobCgroup } from "./types.js";

export function backendFor(layout: CgroupLayout, parent: string): CgroupBackend {
  return layout.version === 2
    ? createV2Backend(layout.mount, parent)
    : createV1Backend(layout.mounts, parent);
}

/** Detect the host's cgroup version and return the matching backend (throws SANDBOX_UNAVAILABLE). */
export async function openCgroups(parent: string): Promise<CgroupBackend> {
  return backendFor(await detectCgroups(), parent);
}
