/**
 * Startup cleanup. Everything under our cgroup parent and rootDir belongs to a predecessor that
 * died, so it is killed and removed without asking.
 */
import type { CgroupBackend } from "./cgroups/index.js";
import { killUntilGone, pidsWithEnv } from "./process-tree.js";
import type { ReapReport } from "./types.js";
import { type RootDir, wipeRootContents } from "./workspace.js";

export async function reap(cgroups: CgroupBackend, root: RootDir, markerEnv: string): Promise<ReapReport> {
  // Wrappers/bwrap that had not joined a cgroup yet carry our marker in their environment.
  let processesKilled = await killUntilGone(() => pidsWithEnv(markerEnv));
  let cgroupsRemoved = 0;
  for (const jobId of await cgroups.list()) {
    const cg = cgroups.open(jobId);
    processesKilled += (await cg.pids()).length;
    await cg.remove();
    cgroupsRemoved++;
  }
  const workspacesRemoved = await wipeRootContents(root);
  return { cgroupsRemoved, processesKilled, workspacesRemoved };
}
