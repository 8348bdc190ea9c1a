import type { Transaction } from "kysely";
import { appendAudit } from "../audit/log.js";
import type { Clock } from "../clock.js";
import { AirlockError } from "../errors.js";
import type { Db } from "../store/database.js";
import type { Database, JobTable, RunTable } from "../store/tables.js";
import { assertJobTransition, assertRunTransition, type JobState, type RunState } from "./states.js";

export interface TransitionOptions {
  actor: string;
  data?: Record<string, unknown>;
  patch?: Partial<
    Pick<
      JobTable,
      "runner_id" | "detail" | "decision" | "started_at" | "finished_at" | "conclusion" | "outputs" | "gate"
    >
  >;
  /** Only move if the job is in one of these states (a compare-and-set, for claiming work). */
  expect?: readonly JobState[];
}

/**
 * Moves a job to a new state and writes its audit record in the same transaction. Returns null
 * when `expect` was given and the job was no longer in an expected state (someone else won).
 */
export async function transitionJob(
  db: Db | Transaction<Database>,
  jobId: string,
  to: JobState,
  opts: TransitionOptions,
  clock: Clock,
): Promise<JobTable | null> {
  const work = async (trx: Transaction<Database>) => {
    const job = await trx.selectFrom("jobs").selectAll().where("id", "=", jobId).executeTakeFirst();
    if (!job) throw new AirlockError("NOT_FOUND", `job ${jobId} does not exist`);
    if (opts.expect && !opts.expect.includes(job.state as JobState)) return null;
    assertJobTransition(job.state, to, jobId);
    const now = clock.now().toISOString();
    const patch = { ...opts.patch, state: to, updated_at: now };
    await trx.updateTable("jobs").set(patch).where("id", "=", jobId).execute();
    await appendAudit(
      trx,
      {
        type: `job.${to}`,
        actor: opts.actor,
        runId: job.run_id,
        jobId,
        runnerId: opts.patch?.runner_id ?? job.runner_id,
        data: { from: job.state, job: job.key, ...opts.data },
      },
      clock,
    );
    return { ...job, ...patch } as JobTable;
  };
  return "isTransaction" in db && db.isTransaction
    ? work(db as Transaction<Database>)
    : (db as Db).transaction().execute(work);
}

export async function transitionRun(
  trx: Transaction<Database>,
  run: RunTable,
  to: RunState,
  actor: string,
  clock: Clock,
  data: Record<string, unknown> = {},
): Promise<void> {
  if (run.state === to) return;
  assertRunTransition(run.state, to, run.id);
  const now = clock.now().toISOString();
  await trx.updateTable("runs").set({ state: to, updated_at: now }).where("id", "=", run.id).execute();
  await appendAudit(
    trx,
    { type: `run.${to}`, actor, runId: run.id, data: { from: run.state, ...data } },
    clock,
  );
}

export async function getJobRow(db: Db, jobId: string): Promise<JobTable> {
  const job = await db.selectFrom("jobs").selectAll().where("id", "=", jobId).executeTakeFirst();
  if (!job)
    throw new AirlockError("NOT_FOUND", `job ${jobId} does not exist`, {
      hint: "list jobs with `airlock runs show RUN`",
    });
  return job;
}

export async function getRunRow(db: Db, runId: string): Promise<RunTable> {
  const run = await db.selectFrom("runs").selectAll().where("id", "=", runId).executeTakeFirst();
  if (!run)
    throw new AirlockError("NOT_FOUND", `run ${runId} does not exist`, {
      hint: "list runs with `airlock runs list`",
    });
  return run;
}
