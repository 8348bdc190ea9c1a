import type { Db } from "../store/database.js";
import type { JobTable, RunTable } from "../store/tables.js";
import { getJobRow, getRunRow } from "./job-store.js";
import { conclusionOf, finishedJobStates, type JobState } from "./states.js";

/** The public shape of runs and jobs: what the API returns and the CLI prints. */
export interface StepView {
  index: number;
  name: string;
  state: string;
  exitCode: number | null;
  startedAt: string | null;
  finishedAt: string | null;
}

export interface JobView {
  id: string;
  runId: string;
  key: string;
  name: string;
  /** Lifecycle position (… running, succeeded, torn_down). */
  state: string;
  /** Outcome once finished: succeeded, failed, cancelled, timed_out, denied, skipped; null before. */
  conclusion: string | null;
  needs: string[];
  runnerId: string | null;
  decision: { allowed: boolean; reasons: string[] } | null;
  detail: string | null;
  outputs: Record<string, string>;
  /** For jobs gated by an environment: its rules and when the approval window closes. */
  gate: Record<string, unknown> | null;
  createdAt: string;
  startedAt: string | null;
  finishedAt: string | null;
  steps?: StepView[];
}

export interface RunView {
  id: string;
  repo: string;
  runNumber: number;
  ref: string;
  sha: string;
  event: string;
  actor: string;
  workflow: string;
  workflowName: string;
  state: string;
  createdAt: string;
  updatedAt: string;
  jobs?: JobView[];
}

export function jobView(row: JobTable): JobView {
  const finished = finishedJobStates.includes(row.state as JobState);
  const decision = row.decision
    ? (JSON.parse(row.decision) as { allowed: boolean; reasons: string[] })
    : null;
  return {
    id: row.id,
    runId: row.run_id,
    key: row.key,
    name: row.name,
    state: row.state,
    conclusion: finished ? conclusionOf(row.state as JobState, row.conclusion) : null,
    needs: JSON.parse(row.needs) as string[],
    runnerId: row.runner_id,
    decision: decision ? { allowed: decision.allowed, reasons: decision.reasons } : null,
    detail: row.detail,
    outputs: row.outputs ? (JSON.parse(row.outputs) as Record<string, string>) : {},
    gate: row.gate ? (JSON.parse(row.gate) as Record<string, unknown>) : null,
    createdAt: row.created_at,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
  };
}

export function runView(row: RunTable, repo: string): RunView {
  return {
    id: row.id,
    repo,
    runNumber: row.run_number,
    ref: row.ref,
    sha: row.sha,
    event: row.event,
    actor: row.actor,
    workflow: row.workflow_path,
    workflowName: row.workflow_name,
    state: row.state,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function loadRunView(db: Db, runId: string): Promise<RunView> {
  const run = await getRunRow(db, runId);
  const repo = await db
    .selectFrom("repos")
    .select("name")
    .where("id", "=", run.repo_id)
    .executeTakeFirstOrThrow();
  const jobs = await db
    .selectFrom("jobs")
    .selectAll()
    .where("run_id", "=", runId)
    .orderBy("created_at")
    .execute();
  return { ...runView(run, repo.name), jobs: jobs.map(jobView) };
}

export async function loadJobView(db: Db, jobId: string): Promise<JobView> {
  const job = await getJobRow(db, jobId);
  const steps = await db.selectFrom("steps").selectAll().where("job_id", "=", jobId).orderBy("idx").execute();
  return {
    ...jobView(job),
    steps: steps.map((s) => ({
      index: s.idx,
      name: s.name,
      state: s.state,
      exitCode: s.exit_code,
      startedAt: s.started_at,
      finishedAt: s.finished_at,
    })),
  };
}

export async function listRunViews(db: Db, opts: { repo?: string; limit?: number } = {}): Promise<RunView[]> {
  let q = db
    .selectFrom("runs")
    .innerJoin("repos", "repos.id", "runs.repo_id")
    .selectAll("runs")
    .select("repos.name as repo_name")
    .orderBy("runs.created_at", "desc")
    .limit(opts.limit ?? 50);
  if (opts.repo) q = q.where("repos.name", "=", opts.repo);
  const rows = await q.execute();
  return rows.map((r) => runView(r, r.repo_name));
}

/** Jobs waiting for an environment's approval, oldest first. */
export async function listWaitingJobs(db: Db): Promise<JobView[]> {
  const rows = await db
    .selectFrom("jobs")
    .selectAll()
    .where("state", "=", "waiting_approval")
    .orderBy("created_at")
    .execute();
  return rows.map(jobView);
}
