import pino, { type Logger } from "pino";
import { ArtifactStore } from "../artifacts/store.js";
import { appendAudit, recordAudit } from "../audit/log.js";
import type { Principal } from "../auth/principal.js";
import { type Clock, systemClock } from "../clock.js";
import { type Config, dataPaths } from "../config/config.js";
import { loadMasterKey } from "../identity/index.js";
import { EgressService } from "../network/index.js";
import { createPolicyEngine, loadPolicies } from "../policy/index.js";
import { createBwrapDriver, type SandboxDriver } from "../sandbox/index.js";
import { type Db, openSqlite } from "../store/database.js";
import { type ApprovalDecision, decideApproval } from "./approvals.js";
import type { ControllerDeps } from "./deps.js";
import { openIdentity } from "./job-identity.js";
import { getJobRow, getRunRow, transitionJob } from "./job-store.js";
import { acquireControllerLock } from "./lock.js";
import { type RecoveryReport, recover } from "./recovery.js";
import { settleRun } from "./run-state.js";
import { Scheduler } from "./scheduler.js";
import { finishedJobStates, type JobState } from "./states.js";
import { type RunRequest, type SubmittedRun, submitRun } from "./submit.js";
import { UidPool } from "./uid-pool.js";

export interface OpenControllerOptions {
  config: Config;
  clock?: Clock;
  logger?: Logger;
  driver?: SandboxDriver;
  /** Run the scheduler (and so hold the data directory's lock). Read-only uses pass false. */
  schedule?: boolean;
}

/**
 * The control plane in one object: intake, the queue and scheduler, cancellation, and startup
 * recovery. The embedded CLI and the HTTP server both drive it.
 */
export class Controller {
  readonly recovery: Promise<RecoveryReport | null>;
  private readonly scheduler: Scheduler;

  private constructor(
    readonly deps: ControllerDeps,
    private readonly releaseLock: (() => void) | undefined,
    schedule: boolean,
  ) {
    this.scheduler = new Scheduler(
      deps,
      new UidPool(deps.config.sandbox.uidBase, deps.config.sandbox.uidCount),
    );
    this.recovery = schedule ? recover(deps) : Promise.resolve(null);
  }

  static async open(opts: OpenControllerOptions): Promise<Controller> {
    const config = opts.config;
    const paths = dataPaths(config);
    const logger =
      opts.logger ?? pino({ level: process.env.AIRLOCK_LOG_LEVEL ?? "warn" }, pino.destination(2));
    const db = await openSqlite(paths.database);
    const policy = createPolicyEngine(await loadPolicies(config.policyDir ? { dir: config.policyDir } : {}));
    const driver =
      opts.driver ?? createBwrapDriver({ rootDir: paths.sandboxes, cgroupName: paths.cgroupName });
    const deps: ControllerDeps = {
      db,
      clock: opts.clock ?? systemClock,
      config,
      policy,
      driver,
      artifacts: new ArtifactStore(paths.artifacts),
      logger,
      egress: null,
      kek: loadMasterKey({ dataDir: config.dataDir }),
      identity: null,
    };
    const schedule = opts.schedule ?? true;
    let release: (() => void) | undefined;
    if (schedule) {
      try {
        await driver.preflight();
        release = acquireControllerLock(paths.lock);
      } catch (err) {
        // A host that cannot run jobs refuses every run; say so in the audit log, not only on stderr.
        const e = err as { code?: string; message?: string };
        await recordAudit(
          db,
          {
            type: "controller.refused",
            actor: "controller",
            data: { code: e.code ?? "INTERNAL", reason: e.message ?? String(err) },
          },
          deps.clock,
        );
        await db.destroy();
        throw err;
      }
    }
    if (schedule) {
      deps.identity = await openIdentity(db, deps.kek, config, deps.clock);
      await startEgress(deps, paths.networkNames);
    }
    const controller = new Controller(deps, release, schedule);
    try {
      await controller.recovery;
    } catch (err) {
      release?.();
      await db.destroy();
      throw err;
    }
    if (schedule) controller.scheduler.start();
    return controller;
  }

  get db(): Db {
    return this.deps.db;
  }

  async submit(req: RunRequest, principal: Principal): Promise<SubmittedRun> {
    const submitted = await submitRun(this.deps, req, principal);
    await settleRun(this.deps, submitted.run.id);
    this.scheduler.wake();
    return submitted;
  }

  /** Cancels every unfinished job of a run: queued ones at once, running ones by killing their tree. */
  async cancelRun(runId: string, principal: Principal): Promise<void> {
    await getRunRow(this.db, runId);
    const jobs = await this.db.selectFrom("jobs").selectAll().where("run_id", "=", runId).execute();
    for (const job of jobs) await this.cancelJobRow(job.id, principal);
    await settleRun(this.deps, runId);
    this.scheduler.wake();
  }

  async cancelJob(jobId: string, principal: Principal): Promise<void> {
    const job = await getJobRow(this.db, jobId);
    await this.cancelJobRow(jobId, principal);
    await settleRun(this.deps, job.run_id);
    this.scheduler.wake();
  }

  private async cancelJobRow(jobId: string, principal: Principal): Promise<void> {
    const now = this.deps.clock.now().toISOString();
    const moved = await transitionJob(
      this.db,
      jobId,
      "cancelled",
      {
        actor: principal.userName,
        patch: { conclusion: "cancelled", detail: `cancelled by ${principal.userName}`, finished_at: now },
        expect: ["queued", "admitted", "waiting_approval"],
      },
      this.deps.clock,
    );
    if (moved) return;
    const job = await getJobRow(this.db, jobId);
    if (finishedJobStates.includes(job.state as JobState)) return;
    // Running: flag it; whichever scheduler runs the job sees the flag and kills the tree.
    await this.db.transaction().execute(async (trx) => {
      await trx.updateTable("jobs").set({ cancel_requested_at: now }).where("id", "=", jobId).execute();
      await appendAudit(
        trx,
        {
          type: "job.cancel_requested",
          actor: principal.userName,
          runId: job.run_id,
          jobId,
          runnerId: job.runner_id,
        },
        this.deps.clock,
      );
    });
  }

  /** One approver's decision on a job waiting for its environment's approval. */
  async decideApproval(
    jobId: string,
    principal: Principal,
    decision: ApprovalDecision,
    comment?: string,
  ): Promise<void> {
    await decideApproval(this.deps, jobId, principal, decision, comment);
    const job = await getJobRow(this.db, jobId);
    await settleRun(this.deps, job.run_id);
    this.scheduler.wake();
  }

  /** Resolves when every job of the run has finished and been torn down. */
  async waitForRun(runId: string, pollMs = 100): Promise<string> {
    for (;;) {
      const run = await getRunRow(this.db, runId);
      const open = await this.db
        .selectFrom("jobs")
        .select("id")
        .where("run_id", "=", runId)
        .where("state", "not in", ["torn_down", "denied", "skipped", "cancelled"])
        .executeTakeFirst();
      if (!open && ["succeeded", "failed", "cancelled"].includes(run.state)) return run.state;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  async close(): Promise<void> {
    await this.scheduler.stop(true);
    await this.deps.egress?.close();
    if (this.releaseLock) await this.deps.driver.close();
    this.releaseLock?.();
    await this.db.destroy();
  }
}

/**
 * Job networks need iproute2, nftables and nsenter. A host without them still runs jobs that ask
 * for no egress; the others fail with the reason, which is also audited once here.
 */
async function startEgress(deps: ControllerDeps, names: { table: string; prefix: string }): Promise<void> {
  const n = deps.config.network;
  try {
    deps.egress = await EgressService.start({
      db: deps.db,
      logger: deps.logger,
      pool: n.pool,
      ports: { forward: n.proxyPort, http: n.transparentHttpPort, tls: n.transparentTlsPort, dns: n.dnsPort },
      names,
      airlockPorts: [n.jobApiPort],
      hosts: n.hosts,
      denyCidrs: n.denyCidrs,
    });
  } catch (err) {
    deps.egressUnavailable = (err as Error).message;
    deps.logger.warn({ err }, "job networks are unavailable; jobs with egress will fail");
    await recordAudit(
      deps.db,
      {
        type: "controller.network_unavailable",
        actor: "controller",
        data: { reason: deps.egressUnavailable },
      },
      deps.clock,
    );
  }
}
