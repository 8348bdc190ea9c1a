import { chown, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { recordAudit } from "../audit/log.js";
import { isAirlockError } from "../errors.js";
import { revokeJobTokens } from "../identity/index.js";
import { LogPipeline } from "../logs/pipeline.js";
import { getRepoById, type Repo } from "../repos/registry.js";
import type { ExecResult, Sandbox } from "../sandbox/index.js";
import { revokeJobLeases } from "../secrets/index.js";
import { createMasker, maskFolded, maskText, SecretSet } from "../secrets/masker/index.js";
import type { JobTable, RunTable } from "../store/tables.js";
import { type ExecutionStatus, evaluateCondition, interpolate, type JobSpec } from "../workflow/index.js";
import { effectiveEgress } from "./admission.js";
import { expressionContext, githubContext, type StepRecord } from "./contexts.js";
import type { ControllerDeps } from "./deps.js";
import { claimsInputFor } from "./job-identity.js";
import { type JobLink, provisionJobLink } from "./job-link.js";
import { resolveDeclaredSecrets } from "./job-secrets.js";
import { transitionJob } from "./job-store.js";
import { publishProvenance } from "./publish.js";
import type { JobState } from "./states.js";
import { downloadArtifact, uploadArtifact } from "./steps/artifacts.js";
import { checkout } from "./steps/checkout.js";
import { sandboxPath } from "./steps/paths.js";
import { runScript } from "./steps/run-script.js";
import { outputFileInSandbox, readStepOutputs, runnerDir } from "./steps/step-files.js";
import type { StepEnv } from "./steps/types.js";
import type { UidPool } from "./uid-pool.js";

/** The job spec as stored at intake (see submit.ts). */
export type StoredJobSpec = JobSpec & { workflowEnv: Record<string, string>; workflowName: string };

export interface JobRunContext {
  deps: ControllerDeps;
  uids: UidPool;
  job: JobTable;
  run: RunTable;
  runnerId: string;
  needs: Record<string, unknown>;
  signal: AbortSignal;
  workspaceDir: string;
}

type Outcome = Extract<JobState, "succeeded" | "failed" | "cancelled" | "timed_out">;

/**
 * Provision → execute → teardown for one claimed job. Teardown runs whatever happened before it,
 * and the job always ends torn_down with its conclusion kept.
 */
export async function runJob(c: JobRunContext): Promise<Outcome> {
  const { deps, job, run, runnerId } = c;
  const spec = JSON.parse(job.spec) as StoredJobSpec;
  // Everything this job must never show in a log: tokens Airlock hands it, secrets, ::add-mask::.
  const secrets = new SecretSet();
  let credentialCount = 0;
  const logs = new LogPipeline(
    deps.db,
    job.id,
    deps.clock,
    (stream) =>
      createMasker(secrets, {
        // Airlock's own lines carry no workflow commands; only the job's output may add masks.
        addMask: stream !== "system",
        onDetection: (d) => {
          void recordAudit(
            deps.db,
            {
              type: "log.credential_masked",
              actor: runnerId,
              runId: run.id,
              jobId: job.id,
              runnerId,
              data: { kind: d.kind, stream },
            },
            deps.clock,
          ).catch(() => undefined);
        },
      }),
    (err) => deps.logger.error({ jobId: job.id, runId: run.id, runnerId, err }, "could not store log lines"),
  );
  let sandbox: Sandbox | undefined;
  let link: JobLink | undefined;
  let uid: number | undefined;
  let outcome: Outcome = "failed";
  let detail: string | null = null;
  let outputs: Record<string, string> = {};
  let startedOn = deps.clock.now();
  try {
    const repo = await getRepoById(deps.db, run.repo_id);
    uid = c.uids.acquire();
    link = await provisionJobLink(deps, {
      jobId: job.id,
      runId: run.id,
      runnerId,
      egress: effectiveEgress(spec, repo),
      idToken: spec.permissions?.["id-token"] === "write",
      onCredential: (value) => secrets.addSecret(`airlock_credential_${++credentialCount}`, value),
      // Host names arrive lower-cased from the proxy and the resolver, so match without case.
      mask: (text) => maskFolded(secrets, text),
    });
    const declared = await resolveDeclaredSecrets(deps, job.id, spec.secrets, (name, value) =>
      secrets.addSecret(name, value),
    );
    sandbox = await deps.driver.create({
      ...(link.network ? { network: link.network } : {}),
      jobId: job.id,
      workspaceDir: c.workspaceDir,
      uid,
      limits: {
        memoryBytes: deps.config.sandbox.memoryBytes,
        pids: deps.config.sandbox.pids,
        cpuWeight: deps.config.sandbox.cpuWeight,
      },
    });
    startedOn = deps.clock.now();
    // The workspace is new and nothing of the job has run yet, so the host may create in it.
    const stepFiles = join(sandbox.workspaceDir, runnerDir);
    await mkdir(stepFiles, { mode: 0o700 });
    await chown(stepFiles, uid, uid);
    await transitionJob(
      deps.db,
      job.id,
      "running",
      {
        actor: runnerId,
        patch: { started_at: deps.clock.now().toISOString() },
        data: {
          uid,
          network: link.jobAddr ? { ...effectiveEgress(spec, repo), jobAddr: link.jobAddr } : "loopback only",
        },
      },
      deps.clock,
    );
    const result = await executeSteps(c, spec, {
      sandbox,
      logs,
      repo,
      env: link.env,
      uid,
      secrets: declared,
      mask: (text) => maskText(secrets, text),
      secretSet: secrets,
    });
    outcome = result.outcome;
    detail = result.detail;
    outputs = result.outputs;
    if (outcome === "succeeded") {
      const provenance = await publishProvenance(deps, {
        job,
        run,
        repo,
        runnerId,
        spec,
        startedOn,
        refProtected: (await claimsInputFor(deps.db, job.id)).refProtected,
        workspaceDir: sandbox.workspaceDir,
      });
      if (provenance) logs.write(-1, "system", `Signed provenance ${provenance} for this job's artifacts\n`);
    }
  } catch (err) {
    outcome = c.signal.aborted ? "cancelled" : "failed";
    const raw = isAirlockError(err)
      ? `${err.code}: ${err.message}`
      : `internal error: ${(err as Error).message}`;
    // Error text can quote what the job chose (a name, a path), and the detail is stored and shown
    // outside the log pipeline: it passes the job's masker like everything else.
    detail = maskText(secrets, raw);
    logs.write(-1, "system", `Job failed: ${detail}\n`);
    // The stack repeats the message; when masking changed it, only the masked text is logged.
    const logged = detail === raw ? err : { message: detail };
    deps.logger.error(
      { jobId: job.id, runId: run.id, runnerId, err: logged },
      "job failed before or between steps",
    );
  } finally {
    await logs.close();
    // Before the outcome is recorded: recording it releases the jobs that need this one, and none
    // of them may find this job's tokens or leases still alive (a step can hand them on).
    const revoked = await revokeCredentials(c);
    await finish(c, outcome, detail, outputs);
    await teardown(c, sandbox, uid, link, revoked);
  }
  return outcome;
}

/** What the steps of one job run with, once provisioning is done. */
interface JobResources {
  sandbox: Sandbox;
  logs: LogPipeline;
  repo: Repo;
  /** Variables from the job's link: proxy settings, the ID-token request URL and token. */
  env: Record<string, string>;
  uid: number;
  /** The job's declared secrets, for `${{ secrets.X }}`: a step sees only what it interpolates. */
  secrets: Record<string, string>;
  /** Masks what the job's log masker hides (a secret, a token, an encoding of one), for text stored outside the log pipeline. */
  mask(text: string): string;
  /** The same values, for scanning artifacts before they are stored. */
  secretSet: SecretSet;
}

async function executeSteps(
  c: JobRunContext,
  spec: StoredJobSpec,
  r: JobResources,
): Promise<{ outcome: Outcome; detail: string | null; outputs: Record<string, string> }> {
  const { deps, job, run } = c;
  const { sandbox, logs, repo } = r;
  const deadline = deps.clock.now().getTime() + spec.timeoutMinutes * 60_000;
  const github = githubContext(run, repo.name, spec.id, spec.workflowName);
  const inputs = JSON.parse(run.inputs) as Record<string, string>;
  const steps: Record<string, StepRecord> = {};
  let status: ExecutionStatus = "success";
  let outcome: Outcome = "succeeded";
  let detail: string | null = null;

  for (const [idx, step] of spec.steps.entries()) {
    const stepKey = step.id ?? `__step${idx}`;
    const baseEnv = { ...spec.workflowEnv, ...spec.env };
    const ctx = () =>
      expressionContext({
        github,
        env: baseEnv,
        inputs,
        needs: c.needs,
        steps,
        jobStatus: status,
        secrets: r.secrets,
      });
    if (c.signal.aborted) status = "cancelled";
    const timeLeft = deadline - deps.clock.now().getTime();
    if (status === "cancelled" || timeLeft <= 0 || !evaluateCondition(step.if, ctx())) {
      steps[stepKey] = { outputs: {}, outcome: "skipped", conclusion: "skipped" };
      await setStep(c, idx, "skipped", null);
      continue;
    }
    await setStep(c, idx, "running", null);
    logs.write(idx, "system", `▶ ${stepLabel(step, idx)}\n`);
    let result: ExecResult;
    try {
      const env = interpolateEnv({ ...baseEnv, ...step.env }, ctx());
      const withArgs = interpolateEnv(step.with ?? {}, ctx());
      const stepEnv: StepEnv = {
        deps,
        run,
        job,
        repo,
        runnerId: c.runnerId,
        uid: r.uid,
        mask: r.mask,
        secretSet: r.secretSet,
        sandbox,
        logs,
        stepIdx: idx,
        env: { ...defaultEnv(github, idx), ...r.env, ...env },
        with: withArgs,
        timeoutMs: timeLeft,
        signal: c.signal,
        expectMore: idx < spec.steps.length - 1,
      };
      if (step.uses?.action === "actions/checkout") result = await checkout(stepEnv);
      else if (step.uses?.action === "actions/upload-artifact") result = await uploadArtifact(stepEnv);
      else if (step.uses?.action === "actions/download-artifact") result = await downloadArtifact(stepEnv);
      else {
        const script = interpolate(step.run ?? "", ctx());
        const cwd = step.workingDirectory
          ? sandboxPath(interpolate(step.workingDirectory, ctx()), "working-directory")
          : "/workspace";
        result = await runScript(stepEnv, script, step.shell, cwd);
      }
    } catch (err) {
      const message = isAirlockError(err) ? err.message : `internal error: ${(err as Error).message}`;
      logs.write(idx, "system", `Error: ${message}\n`);
      result = {
        exitCode: null,
        signal: null,
        timedOut: false,
        cancelled: c.signal.aborted,
        oomKilled: false,
        durationMs: 0,
      };
    }
    logs.endStep(idx);
    const ok = result.exitCode === 0;
    const outputs = ok ? maskValues(readStepOutputs(sandbox.workspaceDir, idx), r.mask) : {};
    const stepOutcome = result.cancelled ? "cancelled" : ok ? "success" : "failure";
    const conclusion = !ok && step.continueOnError ? "success" : stepOutcome;
    steps[stepKey] = { outputs, outcome: stepOutcome, conclusion };
    await setStep(c, idx, ok ? "succeeded" : result.cancelled ? "cancelled" : "failed", result.exitCode);
    if (!ok) {
      logs.write(idx, "system", `${describeFailure(result)}\n`);
    }
    if (result.timedOut) {
      outcome = "timed_out";
      detail = `timed out after ${spec.timeoutMinutes} minute(s) in step ${idx + 1}`;
      status = "cancelled";
    } else if (result.cancelled || c.signal.aborted) {
      outcome = "cancelled";
      detail = "cancelled";
      status = "cancelled";
    } else if (!ok && !step.continueOnError) {
      if (outcome === "succeeded") {
        outcome = "failed";
        detail = `step ${idx + 1} (${stepLabel(step, idx)}) ${describeFailure(result)}`;
      }
      status = "failure";
    }
  }
  // Job outputs are expressions over the steps' outputs, evaluated once the steps are done.
  const finalCtx = expressionContext({
    github,
    env: { ...spec.workflowEnv, ...spec.env },
    inputs,
    needs: c.needs,
    steps,
    jobStatus: status,
  });
  const outputs: Record<string, string> = {};
  for (const [name, expr] of Object.entries(spec.outputs ?? {})) {
    try {
      const value = interpolate(expr, finalCtx);
      // Job outputs are stored and handed to dependent jobs, whose maskers do not know this job's
      // secrets; like GitHub, drop an output that carries one rather than pass it on.
      if (r.mask(value) !== value) {
        logs.write(-1, "system", `Output ${name} skipped: it may contain a secret\n`);
        continue;
      }
      outputs[name] = value;
    } catch (err) {
      logs.write(-1, "system", `Output ${name} could not be evaluated: ${(err as Error).message}\n`);
    }
  }
  return { outcome, detail, outputs };
}

/** Outputs are stored and passed to other jobs: a secret in one is masked, as GitHub does. */
function maskValues(values: Record<string, string>, mask: (text: string) => string): Record<string, string> {
  return Object.fromEntries(Object.entries(values).map(([k, v]) => [k, mask(v)]));
}

function describeFailure(r: ExecResult): string {
  if (r.timedOut) return "timed out";
  if (r.cancelled) return "was cancelled";
  if (r.oomKilled) return "was killed: out of memory (raise sandbox.memoryBytes or use less)";
  if (r.signal) return `was killed by ${r.signal}`;
  if (r.exitCode === null) return "could not run";
  return `exited with code ${r.exitCode}`;
}

function stepLabel(step: JobSpec["steps"][number], idx: number): string {
  return (
    step.name ??
    (step.uses
      ? `${step.uses.action}@${step.uses.ref}`
      : (step.run ?? "").split("\n")[0]?.slice(0, 60) || `step ${idx + 1}`)
  );
}

function interpolateEnv(
  values: Record<string, string>,
  ctx: ReturnType<typeof expressionContext>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(values)) out[k] = interpolate(String(v), ctx);
  return out;
}

/** The variables GitHub sets for every step, so existing scripts find what they expect. */
function defaultEnv(github: ReturnType<typeof githubContext>, idx: number): Record<string, string> {
  return {
    CI: "true",
    AIRLOCK: "true",
    GITHUB_ACTIONS: "true",
    PATH: "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin",
    LANG: "C.UTF-8",
    GITHUB_WORKSPACE: "/workspace",
    GITHUB_REPOSITORY: github.repository,
    GITHUB_REPOSITORY_OWNER: String(github.repository_owner),
    GITHUB_REF: github.ref,
    GITHUB_REF_NAME: github.ref_name,
    GITHUB_REF_TYPE: github.ref_type,
    GITHUB_SHA: github.sha,
    GITHUB_EVENT_NAME: github.event_name,
    GITHUB_ACTOR: github.actor,
    GITHUB_RUN_ID: github.run_id,
    GITHUB_RUN_NUMBER: github.run_number,
    GITHUB_RUN_ATTEMPT: "1",
    GITHUB_WORKFLOW: github.workflow,
    GITHUB_JOB: github.job,
    GITHUB_OUTPUT: outputFileInSandbox(idx),
    RUNNER_OS: "Linux",
    RUNNER_TEMP: "/tmp",
  };
}

async function setStep(c: JobRunContext, idx: number, state: string, exitCode: number | null): Promise<void> {
  const now = c.deps.clock.now().toISOString();
  const patch =
    state === "running"
      ? { state, started_at: now }
      : state === "skipped"
        ? { state }
        : { state, exit_code: exitCode, finished_at: now };
  await c.deps.db
    .updateTable("steps")
    .set(patch)
    .where("job_id", "=", c.job.id)
    .where("idx", "=", idx)
    .execute();
}

async function finish(
  c: JobRunContext,
  outcome: Outcome,
  detail: string | null,
  outputs: Record<string, string>,
): Promise<void> {
  try {
    await transitionJob(
      c.deps.db,
      c.job.id,
      outcome,
      {
        actor: c.runnerId,
        patch: {
          conclusion: outcome,
          detail,
          outputs: JSON.stringify(outputs),
          finished_at: c.deps.clock.now().toISOString(),
        },
        data: detail ? { detail } : {},
        expect: ["provisioning", "running"],
      },
      c.deps.clock,
    );
  } catch (err) {
    c.deps.logger.error({ jobId: c.job.id, err }, "could not record the job's outcome");
  }
}

/** Every token and lease the job held dies with it; an error text when that failed. */
async function revokeCredentials(c: JobRunContext): Promise<string | undefined> {
  try {
    await revokeJobTokens(c.deps.db, c.job.id, { clock: c.deps.clock });
    await revokeJobLeases(c.deps.db, c.job.id, {
      actor: c.runnerId,
      reason: "job ended",
      clock: c.deps.clock,
    });
    return undefined;
  } catch (err) {
    c.deps.logger.error(
      { jobId: c.job.id, runnerId: c.runnerId, err },
      "could not revoke the job's credentials",
    );
    return `credentials: ${(err as Error).message}`;
  }
}

async function teardown(
  c: JobRunContext,
  sandbox: Sandbox | undefined,
  uid: number | undefined,
  link: JobLink | undefined,
  credentialsError: string | undefined,
): Promise<void> {
  let error: string | undefined;
  try {
    if (sandbox) await sandbox.destroy();
  } catch (err) {
    error = (err as Error).message;
    c.deps.logger.error({ jobId: c.job.id, runnerId: c.runnerId, err }, "teardown failed");
  } finally {
    if (uid !== undefined) c.uids.release(uid);
  }
  if (credentialsError) error = `${error ? `${error}; ` : ""}${credentialsError}`;
  try {
    await link?.release();
  } catch (err) {
    error = `${error ? `${error}; ` : ""}network: ${(err as Error).message}`;
    c.deps.logger.error({ jobId: c.job.id, runnerId: c.runnerId, err }, "network teardown failed");
  }
  try {
    await transitionJob(
      c.deps.db,
      c.job.id,
      "torn_down",
      {
        actor: c.runnerId,
        data: error
          ? { error }
          : { sandbox: sandbox ? "destroyed" : "none", network: link?.jobAddr ? "removed" : "none" },
      },
      c.deps.clock,
    );
  } catch (err) {
    if (!(isAirlockError(err) && err.code === "INVALID_TRANSITION")) throw err;
    await recordAudit(
      c.deps.db,
      {
        type: "job.teardown_anomaly",
        actor: c.runnerId,
        jobId: c.job.id,
        runId: c.run.id,
        runnerId: c.runnerId,
        data: { reason: err.message },
      },
      c.deps.clock,
    );
  }
}
