import picomatch from "picomatch";
import { appendAudit, recordAudit } from "../audit/log.js";
import { AirlockError, isAirlockError } from "../errors.js";
import { newId } from "../ids.js";
import type { Decision } from "../policy/index.js";
import { findEnvironment, listEnvironments, refAllowed } from "../repos/environments.js";
import type { ResolvedRef } from "../repos/git-source.js";
import { assertCommitOnRef, GitSource, type WorkflowSource } from "../repos/git-source.js";
import { isProtectedRef } from "../repos/protected-refs.js";
import { getRepo, type Repo } from "../repos/registry.js";
import type { JobTable, RunTable } from "../store/tables.js";
import { type JobSpec, parseWorkflow, type Workflow } from "../workflow/index.js";
import { admissionInput } from "./admission.js";
import { type Gate, gateFor } from "./approvals.js";
import type { ControllerDeps, Principal } from "./deps.js";
import { resolveInputs } from "./inputs.js";
import { transitionJob } from "./job-store.js";

/** What a caller asks for. The actor is never part of it: it is whoever is authenticated. */
export interface RunRequest {
  repo: string;
  ref: string;
  sha?: string;
  event?: string;
  workflow?: string;
  inputs?: Record<string, string>;
}

export interface SubmittedRun {
  run: RunTable;
  jobs: JobTable[];
}

/**
 * Intake: resolve, parse and admit a run, then queue it, all or nothing. Anything refused before
 * the run exists is audited as `run.refused` and leaves no row behind.
 */
export async function submitRun(
  deps: ControllerDeps,
  req: RunRequest,
  principal: Principal,
): Promise<SubmittedRun> {
  try {
    return await admitAndQueue(deps, req, principal);
  } catch (err) {
    const e = isAirlockError(err)
      ? err
      : new AirlockError("INTERNAL", (err as Error).message, { cause: err });
    await recordAudit(
      deps.db,
      {
        type: "run.refused",
        actor: principal.userName,
        data: {
          repo: req.repo,
          ref: req.ref,
          event: req.event ?? "push",
          workflow: req.workflow,
          code: e.code,
          reason: e.message,
        },
      },
      deps.clock,
    );
    throw e;
  }
}

async function admitAndQueue(
  deps: ControllerDeps,
  req: RunRequest,
  principal: Principal,
): Promise<SubmittedRun> {
  const event = req.event ?? "push";
  assertRefName(req.ref);
  const repo = await getRepo(deps.db, req.repo);
  const git = GitSource.open(repo.source);
  let resolved: ResolvedRef;
  let source: WorkflowSource;
  let sha: string;
  try {
    resolved = await git.resolveRef(req.ref);
    sha = req.sha ?? resolved.sha;
    if (req.sha) await assertCommitOnRef(repo.source, req.sha, resolved);
    source = await git.readWorkflow(sha, req.workflow);
  } finally {
    git.close();
  }
  const workflowPath = source.path;
  const workflow = parseWorkflow(source.text, workflowPath);
  assertTriggeredBy(workflow, event, workflowPath, resolved);
  const inputs = resolveInputs(workflow, event, req.inputs);
  await canonicalEnvironments(deps, repo, workflow);
  const refProtected = isProtectedRef(repo.protection, resolved.refType, resolved.name);

  const now = deps.clock.now().toISOString();
  const runId = newId("run");
  const jobIds = new Map(workflow.jobs.map((j) => [j.id, newId("job")]));
  const decisions = new Map<string, Decision>();
  const gates = new Map<string, Gate>();
  for (const job of workflow.jobs) {
    decisions.set(
      job.id,
      deps.policy.decideRunJob(
        admissionInput({
          principal,
          repo,
          workflow,
          job,
          jobId: jobIds.get(job.id) as string,
          event,
          resolved,
          refProtected,
        }),
      ),
    );
    await applyEnvironmentRules(deps, repo, job, resolved, decisions, gates);
  }

  return deps.db.transaction().execute(async (trx) => {
    const last = await trx
      .selectFrom("runs")
      .select((eb) => eb.fn.max("run_number").as("n"))
      .where("repo_id", "=", repo.id)
      .executeTakeFirst();
    const run: RunTable = {
      id: runId,
      repo_id: repo.id,
      run_number: Number(last?.n ?? 0) + 1,
      ref: resolved.ref,
      ref_type: resolved.refType,
      sha,
      event,
      actor: principal.userName,
      workflow_path: workflowPath,
      workflow_name: workflow.name ?? workflowPath,
      inputs: JSON.stringify(inputs),
      state: "queued",
      created_at: now,
      updated_at: now,
    };
    await trx.insertInto("runs").values(run).execute();
    await appendAudit(
      trx,
      {
        type: "run.queued",
        actor: principal.userName,
        runId,
        data: { repo: repo.name, ref: resolved.ref, sha, event, workflow: workflowPath, refProtected },
      },
      deps.clock,
    );
    const jobs: JobTable[] = [];
    for (const spec of workflow.jobs) {
      const jobId = jobIds.get(spec.id) as string;
      const row: JobTable = {
        id: jobId,
        run_id: runId,
        key: spec.id,
        name: spec.name ?? spec.id,
        state: "queued",
        conclusion: null,
        needs: JSON.stringify(spec.needs),
        spec: JSON.stringify(storedSpec(workflow, spec)),
        runner_id: null,
        decision: null,
        detail: null,
        cancel_requested_at: null,
        outputs: null,
        gate: null,
        created_at: now,
        updated_at: now,
        started_at: null,
        finished_at: null,
      };
      await trx.insertInto("jobs").values(row).execute();
      await trx
        .insertInto("steps")
        .values(
          spec.steps.map((s, idx) => ({
            job_id: jobId,
            idx,
            name: stepName(s, idx),
            state: "pending",
            exit_code: null,
            started_at: null,
            finished_at: null,
          })),
        )
        .execute();
      const decision = decisions.get(spec.id) as Decision;
      const to = decision.allowed ? "admitted" : "denied";
      const moved = await transitionJob(
        trx,
        jobId,
        to,
        {
          actor: "policy",
          data: { policies: decision.reasons, errors: decision.errors },
          patch: {
            decision: JSON.stringify(decision),
            ...(to === "denied"
              ? { conclusion: "denied", detail: `denied by ${decision.reasons.join(", ") || "default deny"}` }
              : {}),
          },
        },
        deps.clock,
      );
      const gate = gates.get(spec.id);
      if (to === "admitted" && gate) {
        const waiting = await transitionJob(
          trx,
          jobId,
          "waiting_approval",
          { actor: "policy", patch: { gate: JSON.stringify(gate) }, data: { ...gate } },
          deps.clock,
        );
        jobs.push(waiting as JobTable);
        continue;
      }
      jobs.push(moved as JobTable);
    }
    return { run, jobs };
  });
}

/**
 * What a run may name as its ref: a branch or tag, short or as `refs/heads/…`/`refs/tags/…`.
 * Other refs (`refs/pull/7/head`, `refs/remotes/origin/main`) would resolve, but as a "branch"
 * whose name no protection rule was written for; the name is quoted, so one with a newline or a
 * control character cannot forge a second line of the error.
 */
function assertRefName(ref: string): void {
  const shown = JSON.stringify(ref);
  if (!/^[\w./-]+$/.test(ref) || ref.startsWith("-") || ref.split("/").some((c) => c === "." || c === "..")) {
    throw new AirlockError("REF_NOT_FOUND", `${shown} is not a valid ref name`, {
      hint: "name a branch or tag: main, v1.2.0, refs/heads/main or refs/tags/v1.2.0",
    });
  }
  if (ref.startsWith("refs/") && !/^refs\/(heads|tags)\/./.test(ref)) {
    throw new AirlockError("REF_NOT_FOUND", `${shown} is neither a branch nor a tag`, {
      hint: "runs start from refs/heads/… or refs/tags/…",
    });
  }
}

/**
 * Environment names are case-insensitive, as on GitHub: `environment: PROD` is the repository's
 * `prod`, with its approvals and ref rules, and every later step (policy, gate, token claims,
 * secrets) sees the defined spelling. Two defined environments that differ only in case make the
 * name ambiguous, and the run is refused rather than one of them picked.
 */
async function canonicalEnvironments(deps: ControllerDeps, repo: Repo, workflow: Workflow): Promise<void> {
  const wanted = workflow.jobs.filter((j) => j.environment);
  if (wanted.length === 0) return;
  const defined = await listEnvironments(deps.db, repo.name);
  for (const job of wanted) {
    const env = job.environment as NonNullable<JobSpec["environment"]>;
    const matches = defined.filter((d) => d.name.toLowerCase() === env.name.toLowerCase());
    if (matches.length > 1) {
      throw new AirlockError(
        "REQUEST_INVALID",
        `${workflow.file}:${job.position.line}:${job.position.col}: job "${job.id}" names environment "${env.name}", which matches ${matches.map((m) => `"${m.name}"`).join(" and ")} of ${repo.name}`,
        { hint: "environment names are case-insensitive; remove all but one of them (airlock env)" },
      );
    }
    if (matches[0]) env.name = matches[0].name;
  }
}

/**
 * An environment the repository defines may narrow which refs deploy to it (a denial, named like
 * a policy) and may gate the job on approvals or a wait timer (a snapshot kept with the job).
 */
async function applyEnvironmentRules(
  deps: ControllerDeps,
  repo: Repo,
  job: JobSpec,
  resolved: ResolvedRef,
  decisions: Map<string, Decision>,
  gates: Map<string, Gate>,
): Promise<void> {
  const decision = decisions.get(job.id);
  if (!job.environment || !decision?.allowed) return;
  const env = await findEnvironment(deps.db, repo.id, repo.name, job.environment.name);
  if (!env) return;
  if (!refAllowed(env, resolved.refType, resolved.name)) {
    decisions.set(job.id, {
      ...decision,
      allowed: false,
      reasons: [`environment-ref-rules:${env.name}`],
      errors: [`${resolved.ref} may not deploy to ${env.name}`],
    });
    return;
  }
  const gate = gateFor(env, deps.clock.now());
  if (gate) gates.set(job.id, gate);
}

function stepName(step: JobSpec["steps"][number], idx: number): string {
  if (step.name) return step.name;
  if (step.uses) return `${step.uses.action}@${step.uses.ref}`;
  const firstLine = (step.run ?? "").split("\n")[0]?.trim() ?? "";
  return firstLine ? `Run ${firstLine.slice(0, 60)}` : `step ${idx + 1}`;
}

/** The job as the runner needs it later, with the workflow-level env and permissions folded in. */
function storedSpec(workflow: Workflow, job: JobSpec) {
  return {
    ...job,
    workflowEnv: workflow.env,
    workflowFile: workflow.file,
    workflowName: workflow.name ?? workflow.file,
  };
}

function assertTriggeredBy(workflow: Workflow, event: string, file: string, resolved: ResolvedRef): void {
  if (!Object.hasOwn(workflow.on, event)) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `${file} does not run on "${event}" (it runs on: ${Object.keys(workflow.on).join(", ") || "nothing"})`,
      {
        hint: "pass --event with one of the workflow's triggers",
      },
    );
  }
  // Ref filters apply to push as on GitHub (for pull requests they name the base branch, which a
  // local run does not have). A filter for one kind of ref leaves the other kind untriggered.
  const filters = workflow.on[event];
  if (event !== "push" || !filters) return;
  const { branches, branchesIgnore, tags, tagsIgnore } = filters;
  const anyFilter = [branches, branchesIgnore, tags, tagsIgnore].some((f) => f !== undefined);
  if (!anyFilter) return;
  const [only, ignore] = resolved.refType === "tag" ? [tags, tagsIgnore] : [branches, branchesIgnore];
  const matches = (patterns: string[]) => picomatch.isMatch(resolved.name, patterns, { dot: true });
  const runs = only !== undefined ? matches(only) : ignore !== undefined ? !matches(ignore) : false;
  if (!runs) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `${file} does not run on push to ${resolved.refType} ${resolved.name}: its on.push filters exclude it`,
      {
        hint: "run it on a ref the workflow's branches/tags filters select, or use --event workflow_dispatch if it has that trigger",
      },
    );
  }
}
