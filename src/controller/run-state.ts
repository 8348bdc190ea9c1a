import type { ControllerDeps } from "./deps.js";
import { transitionRun } from "./job-store.js";
import { conclusionOf, finishedJobStates, type JobState, type RunState } from "./states.js";

/**
 * Derives a run's state from its jobs: running once any job has started, and when every job has
 * finished, failed if any failed, timed out or was denied, else cancelled if any was cancelled.
 */
export async function settleRun(deps: ControllerDeps, runId: string): Promise<RunState> {
  return deps.db.transaction().execute(async (trx) => {
    const run = await trx.selectFrom("runs").selectAll().where("id", "=", runId).executeTakeFirstOrThrow();
    const jobs = await trx
      .selectFrom("jobs")
      .select(["state", "conclusion"])
      .where("run_id", "=", runId)
      .execute();
    const finished = jobs.every((j) => finishedJobStates.includes(j.state as JobState));
    const started = jobs.some(
      (j) => j.state !== "queued" && j.state !== "admitted" && j.state !== "waiting_approval",
    );
    let next: RunState = run.state as RunState;
    if (finished) {
      const outcomes = jobs.map((j) => conclusionOf(j.state as JobState, j.conclusion));
      if (outcomes.some((o) => o === "failed" || o === "timed_out" || o === "denied")) next = "failed";
      else if (outcomes.some((o) => o === "cancelled")) next = "cancelled";
      else next = "succeeded";
    } else if (started && run.state === "queued") {
      next = "running";
    }
    if (next !== run.state && ["queued", "running"].includes(run.state)) {
      await transitionRun(trx, run, next, "scheduler", deps.clock);
    }
    return next;
  });
}
