/**
 * The typed plan a workflow file becomes. Everything here has been validated: the controller,
 * admission and the runner never see raw YAML, and never meet an unknown key or a bad expression.
 * Expression strings (`if`, `run`, `env` values, …) are kept as written and evaluated later with
 * the run's contexts; they were all parsed once at intake.
 */
import type { SourcePosition } from "../errors.js";

export type { SourcePosition };

export const permissionScopes = [
  "actions",
  "attestations",
  "checks",
  "contents",
  "deployments",
  "discussions",
  "id-token",
  "issues",
  "models",
  "packages",
  "pages",
  "pull-requests",
  "repository-projects",
  "security-events",
  "statuses",
] as const;
export type PermissionScope = (typeof permissionScopes)[number];
export type PermissionLevel = "read" | "write" | "none";

/**
 * Token permissions with every scope spelled out. Shorthands (`read-all`, `write-all`, `{}`) are
 * expanded at parse time, and a scope a mapping leaves out is `none`, as in GitHub.
 */
export type Permissions = Record<PermissionScope, PermissionLevel>;

export type WorkflowInputType = "string" | "boolean" | "choice" | "number" | "environment";

export interface WorkflowInput {
  description?: string;
  required: boolean;
  type: WorkflowInputType;
  default?: string | number | boolean;
  /** Only for `type: choice`. */
  options?: string[];
}

/** One event's filters. Keys are camelCased forms of GitHub's (`branches-ignore` → `branchesIgnore`). */
export interface TriggerConfig {
  branches?: string[];
  branchesIgnore?: string[];
  tags?: string[];
  tagsIgnore?: string[];
  paths?: string[];
  pathsIgnore?: string[];
  types?: string[];
  /** workflow_run: the workflows it follows. */
  workflows?: string[];
  /** workflow_dispatch inputs. */
  inputs?: Record<string, WorkflowInput>;
  /** schedule: the cron lines. */
  cron?: string[];
}

/** Event name → its filters; `on: push` and `on: [push]` both give `{ push: {} }`. */
export type TriggerSpec = Record<string, TriggerConfig>;

export type EgressMode = "enforce" | "audit" | "block";

export interface EgressSpec {
  mode: EgressMode;
  /** `host[:port]`, lower-cased; a host may start with `*.` to match any subdomain. */
  allow: string[];
}

export type BuiltinAction = "actions/checkout" | "actions/upload-artifact" | "actions/download-artifact";

export interface StepSpec {
  /** 0-based position in the job. */
  index: number;
  id?: string;
  name?: string;
  if?: string;
  run?: string;
  /** For run steps: the step's shell, else the job's or workflow's `defaults.run.shell`. */
  shell?: string;
  env: Record<string, string>;
  /** For run steps: the step's value, else `defaults.run.working-directory`. */
  workingDirectory?: string;
  uses?: { action: BuiltinAction; ref: string };
  with: Record<string, string>;
  continueOnError: boolean;
  timeoutMinutes?: number;
  position: SourcePosition;
}

export interface JobSpec {
  id: string;
  name?: string;
  runsOn: string[];
  needs: string[];
  if?: string;
  environment?: { name: string; url?: string };
  /** Effective: the job's own permissions, else the workflow's, else Airlock's default. */
  permissions: Permissions;
  env: Record<string, string>;
  /** Values may hold expressions over `steps`, evaluated when the job ends. */
  outputs: Record<string, string>;
  timeoutMinutes: number;
  continueOnError?: boolean;
  steps: StepSpec[];
  /** Undefined when the job says nothing; the closed default (block) is applied downstream. */
  egress?: EgressSpec;
  /** Secret names the job asks for; `${{ secrets.X }}` must name one of them. */
  secrets: string[];
  /** Requested so policy can refuse it; Airlock never grants it by parsing. */
  privileged: boolean;
  /** Host paths the job asked to mount (from `mounts:` or `container.volumes`), for policy to refuse. */
  hostMounts: string[];
  position: SourcePosition;
}

export interface Workflow {
  file: string;
  name?: string;
  runName?: string;
  on: TriggerSpec;
  /** As declared at the top level (expanded), or Airlock's default when absent. */
  permissions: Permissions;
  env: Record<string, string>;
  /** In file order. */
  jobs: JobSpec[];
}

/** One problem found at intake. `WORKFLOW_INVALID` errors carry all of them in `details.errors`. */
export interface WorkflowProblem {
  message: string;
  file: string;
  line: number;
  col: number;
  hint?: string;
}

export const defaultTimeoutMinutes = 360;
