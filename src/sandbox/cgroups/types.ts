import type { SandboxLimits } from "../types.js";

/** One job's cgroup, whichever version backs it. */
export interface JobCgroup {
  /** Directory name under the parent: the job id, or (cgroup v2, which cannot rename) the standby slot it was claimed from. */
  readonly name: string;
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
  /** A new cgroup named `name`; without limits it is a standby slot, limited when claimed. */
  create(name: string, limits?: SandboxLimits): Promise<JobCgroup>;
  /**
   * Turns a standby slot (see ../standby-pool.ts) into a job's cgroup: renamed to the job id where
   * the kernel allows it (v1), then limited. Throws SANDBOX_FAILED if the job id is taken.
   */
  claim(slot: string, jobId: string, limits: SandboxLimits): Promise<JobCgroup>;
  /** A handle for an existing (or already gone) cgroup; used by destroy and the reaper. */
  open(name: string): JobCgroup;
  /** Cgroups currently under our parent (jobs and standby slots). */
  list(): Promise<string[]>;
  /** Removes the parent cgroup in every hierarchy if no job cgroup is left in it. */
  removeParent(): Promise<void>;
}
