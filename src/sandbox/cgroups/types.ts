import type { SandboxLimits } from "../types.js";

/** One job's cgroup, whichever version backs it. */
export interface JobCgroup {
  readonly jobId: string;
  /** `cgroup.procs` files a process writes its pid into to join (one per v1 hierarchy). */
  readonly procsFiles: readonly string[];
  /** Cumulative OOM kills in this cgroup; callers diff before/after a step. */
  oomKills(): Promise<number>;
  /** Thread-group ids currently in the cgroup. */
  pids(): Promise<number[]>;
  /** SIGKILL everything inside and wait until empty (bounded). Returns how many pids were signalled. */
  killAll(): Promise<number>;
  /** killAll, then remove the directories. Idempotent: missing parts are fine. */
  remove(): Promise<void>;
}

export interface CgroupBackend {
  readonly version: 1 | 2;
  /** Throws SANDBOX_UNAVAILABLE if the parent cgroup cannot be created or limits cannot be set. */
  check(): Promise<void>;
  create(jobId: string, limits: SandboxLimits): Promise<JobCgroup>;
  /** A handle for an existing (or already gone) job cgroup; used by destroy and the reaper. */
  open(jobId: string): JobCgroup;
  /** Job cgroups currently under our parent. */
  list(): Promise<string[]>;
  /** Removes the parent cgroup in every hierarchy if no job cgroup is left in it. */
  removeParent(): Promise<void>;
}
