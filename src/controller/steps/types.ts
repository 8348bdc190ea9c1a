import type { LogPipeline } from "../../logs/pipeline.js";
import type { Repo } from "../../repos/registry.js";
import type { ExecResult, Sandbox } from "../../sandbox/index.js";
import type { SecretSet } from "../../secrets/masker/index.js";
import type { JobTable, RunTable } from "../../store/tables.js";
import type { ControllerDeps } from "../deps.js";

/** What one step of a job works with. */
export interface StepEnv {
  deps: ControllerDeps;
  run: RunTable;
  job: JobTable;
  repo: Repo;
  runnerId: string;
  /** Everything the job must never publish: its secrets, its tokens, `::add-mask::` values. */
  secretSet: SecretSet;
  /** Masks what the job must never show, for text that leaves the log pipeline (names, outputs). */
  mask(text: string): string;
  /** The job's host uid: files the controller puts in the workspace are the job's. */
  uid: number;
  sandbox: Sandbox;
  logs: LogPipeline;
  stepIdx: number;
  env: Record<string, string>;
  with: Record<string, string>;
  timeoutMs: number;
  signal: AbortSignal;
  /** Later steps follow this one (whether they will run or not is decided then). */
  expectMore: boolean;
}

export type StepResult = ExecResult;
