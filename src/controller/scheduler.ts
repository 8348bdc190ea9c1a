import { join } from "node:path";
import { dataPaths } from "../config/config.js";
import { isAirlockError } from "../errors.js";
import { newId } from "../ids.js";
import type { JobTable } from "../store/tables.js";
import { evaluateCondition } from "../workflow/index.js";
import { settleGates } from "./approvals.js";
import { expressionContext, githubContext } from "./contexts.js";
import type { ControllerDeps } from "./deps.js";
import { runJob, type StoredJobSpec } from "./job-runner.js";
import { transitionJob } from "./job-store.js";
import { viewNeeds } from "./needs.js";
import { settleRun } from "./run-state.js";
import type { UidPool } from "./uid-pool.js";

const pollMs = 250;

/** Where each job's workspace lives: `<dir>/<jobId>`, under the sandbox driver's rootDir. */
export function workspacesDir(config: ControllerDeps["config"]): string {
  return join(dataPaths(config).sandboxes, "workspaces");
}

/**
 * Takes admitted jobs from the durable queue (the jobs table) in submission order, honouring
 * `needs`, `if:` and the concurrency limit. Claiming is a compare-and-set on the job's state, so
 * two schedulers over one database never run the same job.
 */
export class Scheduler {
  private readonly running = new Map<string, { abort: AbortController; done: Promise<void> }>();
  private timer: NodeJS.Timeout | undefined;
  private ticking: Promise<void> | undefined;
  private again = false;
  private stopped = true;

  constructor(
    private readonly deps: ControllerDeps,
    private readonly uids: UidPool,
  ) {}

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.timer = setInterval(() => this.wake(), pollMs);
    this.wake();
  }

  /** Stops taking work; with `cancelRunning`, also cancels what runs and waits for its teardown. */
  async stop(cancelRunning = true): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.ticking;
    if (cancelRunning) for (const r of this.running.values()) r.abort.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
  }

  get active(): number {
    return this.running.size;
  }

  wake(): void {
    if (this.stopped) return;
    if (this.ticking) {
      this.again = true;
      return;
    }
    this.ticking = this.tick()
      .catch((err) => this.deps.logger.error({ err }, "scheduler tick failed"))
      .finally(() => {
        this.ticking = undefined;
        if (this.again) {
          this.again = false;
          this.wake();
        }
      });
  }

  private async tick(): Promise<void> {
    await this.honourCancellations();
    for (const runId of await settleGates(this.deps)) await settleRun(this.deps, runId);
    const admitted = await this.deps.db
      .selectFrom("jobs")
      .selectAll()
      .where("state", "=", "admitted")
      .orderBy("created_at")
      .limit(500)
      .execute();
    const siblingsByRun = new Map<string, JobTable[]>();
    for (const job of admitted) {
      if (this.stopped) return;
      let siblings = siblingsByRun.get(job.run_id);
      if (!siblings) {
        siblings = await this.deps.db
          .selectFrom("jobs")
          .selectAll()
          .where("run_id", "=", job.run_id)
          .execute();
        siblingsByRun.set(job.run_id, siblings);
      }
      const needs = viewNeeds(job, siblings);
      if (!needs.ready) continue;
      const run = await this.deps.db
        .selectFrom("runs")
        .selectAll()
        .where("id", "=", job.run_id)
        .executeTakeFirstOrThrow();
      const spec = JSON.parse(job.spec) as StoredJobSpec;
      const repo = await this.deps.db
        .selectFrom("repos")
        .select("name")
        .where("id", "=", run.repo_id)
        .executeTakeFirstOrThrow();
      let wanted: boolean;
      let reason = "";
      try {
        wanted = evaluateCondition(
          spec.if,
          expressionContext({
            github: githubContext(run, repo.name, job.key, spec.workflowName),
            env: { ...spec.workflowEnv },
            inputs: JSON.parse(run.inputs),
            needs: needs.context,
            steps: {},
            jobStatus: needs.status,
          }),
        );
        if (!wanted)
          reason = spec.if ? `if: ${spec.if} was false` : `a needed job did not succeed (${needs.status})`;
      } catch (err) {
        wanted = false;
        reason = isAirlockError(err) ? err.message : String(err);
      }
      if (!wanted) {
        await transitionJob(
          this.deps.db,
          job.id,
          "skipped",
          {
            actor: "scheduler",
            patch: { conclusion: "skipped", detail: reason },
            data: { reason },
            expect: ["admitted"],
          },
          this.deps.clock,
        );
        await settleRun(this.deps, job.run_id);
        siblingsByRun.delete(job.run_id);
        this.again = true;
        continue;
      }
      if (this.running.size >= this.deps.config.scheduler.concurrency) return;
      const runnerId = newId("rnr");
      const claimed = await transitionJob(
        this.deps.db,
        job.id,
        "provisioning",
        {
          actor: "scheduler",
          patch: { runner_id: runnerId },
          data: { runner: runnerId },
          expect: ["admitted"],
        },
        this.deps.clock,
      );
      if (!claimed) continue;
      await settleRun(this.deps, job.run_id);
      this.launch(claimed, run, runnerId, needs.context);
    }
  }

  private launch(
    job: JobTable,
    run: Parameters<typeof runJob>[0]["run"],
    runnerId: string,
    needs: Record<string, unknown>,
  ) {
    const abort = new AbortController();
    const done = runJob({
      deps: this.deps,
      uids: this.uids,
      job,
      run,
      runnerId,
      needs,
      signal: abort.signal,
      workspaceDir: join(workspacesDir(this.deps.config), job.id),
    })
      .then(async () => {
        await settleRun(this.deps, job.run_id);
      })
      .catch((err) => this.deps.logger.error({ err, jobId: job.id }, "job runner crashed"))
      .finally(() => {
        this.running.delete(job.id);
        this.wake();
      });
    this.running.set(job.id, { abort, done });
  }

  /** Cancellation may be requested by another process (CLI against the same store, API). */
  private async honourCancellations(): Promise<void> {
    if (this.running.size === 0) return;
    const requested = await this.deps.db
      .selectFrom("jobs")
      .select("id")
      .where("id", "in", [...this.running.keys()])
      .where("cancel_requested_at", "is not", null)
      .execute();
    for (const { id } of requested) this.running.get(id)?.abort.abort();
  }
}
