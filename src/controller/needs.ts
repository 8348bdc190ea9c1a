import type { JobTable } from "../store/tables.js";
import type { ExecutionStatus } from "../workflow/index.js";
import { conclusionOf, finishedJobStates, type JobState } from "./states.js";

export interface NeedsView {
  /** All needed jobs have finished. */
  ready: boolean;
  status: ExecutionStatus;
  /** The `needs` expression context: result and outputs per needed job. */
  context: Record<string, { result: string; outputs: Record<string, string> }>;
}

const resultName: Record<string, string> = {
  succeeded: "success",
  failed: "failure",
  timed_out: "failure",
  denied: "failure",
  cancelled: "cancelled",
  skipped: "skipped",
};

/** Combines the outcomes of a job's needs the way GitHub does for success()/failure(). */
export function viewNeeds(job: JobTable, siblings: JobTable[]): NeedsView {
  const needs = JSON.parse(job.needs) as string[];
  const byKey = new Map(siblings.map((j) => [j.key, j]));
  const context: NeedsView["context"] = {};
  let ready = true;
  let failure = false;
  let cancelled = false;
  let skipped = false;
  for (const key of needs) {
    const need = byKey.get(key);
    if (!need || !finishedJobStates.includes(need.state as JobState)) {
      ready = false;
      continue;
    }
    const result = resultName[conclusionOf(need.state as JobState, need.conclusion)] ?? "failure";
    context[key] = {
      result,
      outputs: need.outputs ? (JSON.parse(need.outputs) as Record<string, string>) : {},
    };
    if (result === "failure") failure = true;
    else if (result === "cancelled") cancelled = true;
    else if (result === "skipped") skipped = true;
  }
  const status: ExecutionStatus = cancelled
    ? "cancelled"
    : failure
      ? "failure"
      : skipped
        ? "skipped"
        : "success";
  return { ready, status, context };
}
