/** Public contract of the sandbox domain; see README.md for the isolation model. */
import type { Readable } from "node:stream";

export interface OutputSink {
  write(stream: "stdout" | "stderr", chunk: Buffer): void;
  /**
   * Backpressure: a promise while the sink wants no more for now (the stream is paused until it
   * settles), undefined when it can take more. Without it, output is taken as fast as it comes.
   */
  ready?(): Promise<unknown> | undefined;
}

export interface SandboxLimits {
  memoryBytes: number;
  pids: number;
  /** 1..10000 with cgroup v2 semantics (default 100); mapped to cpu.shares on v1. */
  cpuWeight: number;
}

export interface SandboxSpec {
  /** e.g. `job_abc…`; used as hostname and in cgroup and directory names. */
  jobId: string;
  /** Host dir under the driver's rootDir; the only writable bind, mounted at /workspace. */
  workspaceDir: string;
  limits: SandboxLimits;
  /** Unprivileged host uid the job runs as; one per concurrent job. */
  uid: number;
  /** Absent: a private loopback-only network per step. Present: the job's own network. */
  network?: SandboxNetwork;
}

/**
 * The job's network, prepared by someone else (the network domain): the sandbox only needs to
 * know how to enter it and which resolver to name. Kept this small so the sandbox does not
 * depend on how the network is built.
 */
export interface SandboxNetwork {
  /** Command prefix run as root, after joining the cgroup and before dropping to the job uid, that execs the rest inside the namespace (e.g. nsenter --net=…). */
  enterArgv: string[];
  /** Contents of the sandbox's /etc/resolv.conf. */
  resolvConf: string;
}

export interface ExecRequest {
  argv: string[];
  env: Record<string, string>;
  /** Inside the sandbox; default /workspace. */
  cwd?: string;
  timeoutMs?: number;
  /** Aborting cancels the step and kills the job's process tree. */
  signal?: AbortSignal;
  /** Piped to the step's stdin (e.g. a tar stream); empty when absent. */
  stdin?: Readable;
  /** Another exec follows this one: the sandbox readies its launcher while this step runs. */
  expectMore?: boolean;
}

export interface ExecResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  cancelled: boolean;
  oomKilled: boolean;
  durationMs: number;
}

export interface Sandbox {
  readonly jobId: string;
  readonly workspaceDir: string;
  exec(req: ExecRequest, sink: OutputSink): Promise<ExecResult>;
  /** Kill the tree, remove the cgroup, wipe the workspace. Idempotent. */
  destroy(): Promise<void>;
}

export interface ReapReport {
  cgroupsRemoved: number;
  processesKilled: number;
  workspacesRemoved: number;
}

export interface SandboxDriver {
  preflight(): Promise<void>;
  create(spec: SandboxSpec): Promise<Sandbox>;
  reap(): Promise<ReapReport>;
  /** At shutdown: removes what the driver set up for itself (empty parent cgroups). */
  close(): Promise<void>;
}

export interface BwrapDriverOptions {
  /** e.g. `<dataDir>/sandboxes`; workspaces live under it. */
  rootDir: string;
  /** Name of the parent cgroup in every hierarchy; default "airlock". */
  cgroupName?: string;
  /**
   * Fresh cgroups kept ready, each with a launcher already inside, so a job's first step starts
   * without a fork of the controller or a cgroup migration on its path; default 1, 0 disables.
   */
  standbySlots?: number;
  /**
   * Free bytes and inodes the filesystem holding rootDir keeps while steps run; a step that
   * goes under is killed (./disk-guard.ts). Default: 5% of the filesystem, at most 2 GiB and
   * 50 000 inodes.
   */
  diskReserve?: { bytes?: number; inodes?: number };
}
