import type { RunTable } from "../store/tables.js";
import type { ExecutionStatus, ExpressionContext } from "../workflow/index.js";

/** Facts about the run that every expression in it may read as `github.*`. */
export function githubContext(run: RunTable, repoName: string, jobKey: string, workflowName: string) {
  const refName = run.ref.replace(/^refs\/(heads|tags)\//, "");
  return {
    repository: repoName,
    repository_owner: repoName.split("/")[0],
    ref: run.ref,
    ref_name: refName,
    ref_type: run.ref_type,
    sha: run.sha,
    event_name: run.event,
    actor: run.actor,
    triggering_actor: run.actor,
    run_id: run.id,
    run_number: String(run.run_number),
    run_attempt: "1",
    workflow: workflowName,
    workflow_ref: `${repoName}/${run.workflow_path}@${run.ref}`,
    job: jobKey,
    workspace: "/workspace",
    event: {},
  };
}

export interface StepRecord {
  outputs: Record<string, string>;
  outcome: "success" | "failure" | "skipped" | "cancelled";
  conclusion: "success" | "failure" | "skipped" | "cancelled";
}

export function expressionContext(parts: {
  github: Record<string, unknown>;
  env: Record<string, string>;
  inputs: Record<string, string>;
  needs: Record<string, unknown>;
  steps: Record<string, StepRecord>;
  jobStatus: ExecutionStatus;
  /** Only where a step's own text is interpolated; job outputs and `if:` never see secrets. */
  secrets?: Record<string, string>;
}): ExpressionContext {
  return {
    contexts: {
      github: parts.github,
      env: parts.env,
      inputs: parts.inputs,
      needs: parts.needs,
      steps: parts.steps,
      secrets: parts.secrets ?? {},
      vars: {},
      job: { status: parts.jobStatus },
      runner: {
        os: "Linux",
        arch: process.arch === "x64" ? "X64" : process.arch.toUpperCase(),
        temp: "/tmp",
        name: "airlock",
      },
    },
    status: parts.jobStatus,
  };
}
