import { readdir } from "node:fs/promises";
import { appendAudit } from "../audit/log.js";
import type { ControllerDeps } from "./deps.js";
import { transitionJob } from "./job-store.js";
import { settleRun } from "./run-state.js";
import { workspacesDir } from "./scheduler.js";

export interface RecoveryReport {
  jobsFailed: number;
  cgroupsRemoved: number;
  processesKilled: number;
  workspacesRemoved: number;
}

/**
 * Startup: every job that was provisioning or running belonged to a controller that died (we hold
 * the data directory's lock), so it is failed and torn down, and the driver removes whatever
 * sandboxes, cgroups, processes and workspaces are left.
 */
export async function recover(deps: ControllerDeps): Promise<RecoveryReport> {
  // Counted here: the driver counts top-level entries of its rootDir, where the (empty, after a
  // clean shutdown) `workspaces` parent would read as one leftover workspace on every start.
  const workspacesLeft = await readdir(workspacesDir(deps.config)).then(
    (names) => names.length,
    () => 0,
  );
  const reaped = { ...(await deps.driver.reap()), workspacesRemoved: workspacesLeft };
  const orphans = await deps.db
    .selectFrom("jobs")
    .selectAll()
    .where("state", "in", ["provisioning", "running"])
    .execute();
  for (const job of orphans) {
    const detail = "the controller stopped while this job ran; its sandbox was reaped at restart";
    await deps.db.transaction().execute(async (trx) => {
      await transitionJob(
        trx,
        job.id,
        "failed",
        {
          actor: "reaper",
          patch: { conclusion: "failed", detail, finished_at: deps.clock.now().toISOString() },
          data: { detail },
        },
        deps.clock,
      );
      await transitionJob(trx, job.id, "torn_down", { actor: "reaper", data: { reaped: true } }, deps.clock);
    });
    await settleRun(deps, job.run_id);
  }
  const report = { jobsFailed: orphans.length, ...reaped };
  if (orphans.length > 0 || reaped.cgroupsRemoved + reaped.processesKilled + reaped.workspacesRemoved > 0) {
    await deps.db
      .transaction()
      .execute((trx) =>
        appendAudit(trx, { type: "controller.recovered", actor: "reaper", data: { ...report } }, deps.clock),
      );
  }
  return report;
}
