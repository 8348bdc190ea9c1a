import { AirlockError } from "../errors.js";

/**
 * The job and run state machines as tables of allowed transitions. Every change of state goes
 * through `assertJobTransition`/`assertRunTransition` and is written with its audit record in one
 * transaction (see job-store.ts).
 */
export const jobTransitions = {
  queued: ["admitted", "denied", "skipped", "cancelled"],
  admitted: ["waiting_approval", "provisioning", "skipped", "cancelled"],
  waiting_approval: ["admitted", "denied", "cancelled"],
  provisioning: ["running", "failed", "cancelled", "timed_out"],
  running: ["succeeded", "failed", "cancelled", "timed_out"],
  succeeded: ["torn_down"],
  failed: ["torn_down"],
  cancelled: ["torn_down"],
  timed_out: ["torn_down"],
  denied: [],
  skipped: [],
  torn_down: [],
} as const satisfies Record<string, readonly string[]>;

export type JobState = keyof typeof jobTransitions;

/** A finished job's outcome, kept after it reaches torn_down. */
export type JobConclusion = "succeeded" | "failed" | "cancelled" | "timed_out" | "denied" | "skipped";

export const runTransitions = {
  queued: ["running", "succeeded", "failed", "cancelled"],
  running: ["succeeded", "failed", "cancelled"],
  succeeded: [],
  failed: [],
  cancelled: [],
} as const satisfies Record<string, readonly string[]>;

export type RunState = keyof typeof runTransitions;

export function assertJobTransition(from: string, to: JobState, jobId: string): asserts from is JobState {
  const allowed = (jobTransitions as Record<string, readonly string[]>)[from];
  if (!allowed?.includes(to)) {
    throw new AirlockError("INVALID_TRANSITION", `job ${jobId} cannot go from ${from} to ${to}`);
  }
}

export function assertRunTransition(from: string, to: RunState, runId: string): asserts from is RunState {
  const allowed = (runTransitions as Record<string, readonly string[]>)[from];
  if (!allowed?.includes(to)) {
    throw new AirlockError("INVALID_TRANSITION", `run ${runId} cannot go from ${from} to ${to}`);
  }
}

/** States in which a job holds (or may hold) a sandbox. */
export const activeJobStates: readonly JobState[] = ["provisioning", "running"];
/** States a job never leaves except to torn_down or not at all. */
export const finishedJobStates: readonly JobState[] = [
  "succeeded",
  "failed",
  "cancelled",
  "timed_out",
  "denied",
  "skipped",
  "torn_down",
];

export function conclusionOf(state: JobState, conclusion: string | null): string {
  return state === "torn_down" ? (conclusion ?? "unknown") : state;
}
