import { appendAudit, recordAudit } from "../audit/log.js";
import type { Principal } from "../auth/principal.js";
import { can } from "../auth/roles.js";
import { AirlockError } from "../errors.js";
import { newId } from "../ids.js";
import type { Environment } from "../repos/environments.js";
import type { JobTable } from "../store/tables.js";
import type { ControllerDeps } from "./deps.js";
import { getJobRow, getRunRow, transitionJob } from "./job-store.js";

/** The environment's rules as they stood when the job was queued, plus its clock. */
export interface Gate {
  environment: string;
  requiredApprovals: number;
  approvers: string[];
  preventSelfReview: boolean;
  waitSeconds: number;
  /** When the job started waiting. */
  since: string;
  /** When an unapproved job is denied. */
  deadline: string;
}

/** A gate for a job targeting `env`, or null when the environment asks for neither approval nor wait. */
export function gateFor(env: Environment, now: Date): Gate | null {
  if (env.requiredApprovals === 0 && env.waitSeconds === 0) return null;
  return {
    environment: env.name,
    requiredApprovals: env.requiredApprovals,
    approvers: env.approvers,
    preventSelfReview: env.preventSelfReview,
    waitSeconds: env.waitSeconds,
    since: now.toISOString(),
    deadline: new Date(now.getTime() + env.approvalTtlSeconds * 1000).toISOString(),
  };
}

export type ApprovalDecision = "approved" | "rejected";

/**
 * Records one approver's decision on a waiting job. A rejection denies the job at once; approvals
 * release it once enough are in and the wait timer has run (the scheduler does that).
 */
export async function decideApproval(
  deps: ControllerDeps,
  jobId: string,
  principal: Principal,
  decision: ApprovalDecision,
  comment?: string,
): Promise<void> {
  const job = await getJobRow(deps.db, jobId);
  const run = await getRunRow(deps.db, job.run_id);
  const refuse = async (reason: string, code: "FORBIDDEN" | "CONFLICT") => {
    await recordAudit(
      deps.db,
      {
        type: "job.approval_refused",
        actor: principal.userName,
        runId: run.id,
        jobId,
        data: { decision, reason },
      },
      deps.clock,
    );
    throw new AirlockError(code, reason);
  };
  // The server checks the role before it gets here; the controller checks again, so no other
  // caller (a future route, a script over the embedded client) can approve without it.
  if (!can(principal.role, "jobs:approve")) {
    return refuse(
      `${principal.userName} (role ${principal.role}) may not approve or reject jobs`,
      "FORBIDDEN",
    );
  }
  if (job.state !== "waiting_approval" || !job.gate) {
    return refuse(`job ${jobId} is not waiting for approval (it is ${job.state})`, "CONFLICT");
  }
  const gate = JSON.parse(job.gate) as Gate;
  // Until the scheduler next settles gates an expired job still reads waiting_approval; an
  // approval then must not count (it would release the job on the very pass that should deny it).
  if (deps.clock.now().getTime() > Date.parse(gate.deadline)) {
    return refuse(
      `the approval window for job ${jobId} (environment ${gate.environment}) closed at ${gate.deadline}`,
      "CONFLICT",
    );
  }
  if (gate.approvers.length > 0 && !gate.approvers.includes(principal.userName)) {
    return refuse(`${principal.userName} is not an approver of environment ${gate.environment}`, "FORBIDDEN");
  }
  if (gate.preventSelfReview && principal.userName === run.actor) {
    return refuse(
      `${principal.userName} started this run and environment ${gate.environment} forbids self-review`,
      "FORBIDDEN",
    );
  }
  const existing = await deps.db
    .selectFrom("approvals")
    .select("decision")
    .where("job_id", "=", jobId)
    .where("user_id", "=", principal.userId)
    .executeTakeFirst();
  if (existing) return refuse(`${principal.userName} already ${existing.decision} job ${jobId}`, "CONFLICT");

  const now = deps.clock.now().toISOString();
  try {
    await record();
  } catch (err) {
    // Two decisions by one user racing past the check above: the table's unique (job, user)
    // keeps one, and the other is refused like any second decision.
    if (/UNIQUE|unique|duplicate/.test((err as Error).message ?? "")) {
      return refuse(`${principal.userName} already decided on job ${jobId}`, "CONFLICT");
    }
    throw err;
  }

  async function record(): Promise<void> {
    await deps.db.transaction().execute(async (trx) => {
      await trx
        .insertInto("approvals")
        .values({
          id: newId("apv"),
          job_id: jobId,
          user_id: principal.userId,
          user_name: principal.userName,
          decision,
          comment: comment ?? null,
          created_at: now,
        })
        .execute();
      const count = await trx
        .selectFrom("approvals")
        .select((eb) => eb.fn.countAll<number>().as("n"))
        .where("job_id", "=", jobId)
        .where("decision", "=", "approved")
        .executeTakeFirstOrThrow();
      await appendAudit(
        trx,
        {
          type: `job.${decision}`,
          actor: principal.userName,
          runId: run.id,
          jobId,
          data: {
            environment: gate.environment,
            approvals: Number(count.n),
            required: gate.requiredApprovals,
            ...(comment ? { comment } : {}),
          },
        },
        deps.clock,
      );
      if (decision === "rejected") {
        await transitionJob(
          trx,
          jobId,
          "denied",
          {
            actor: principal.userName,
            patch: { conclusion: "denied", detail: `rejected by ${principal.userName}`, finished_at: now },
            data: { reason: "rejected" },
          },
          deps.clock,
        );
      }
    });
  }
}

/**
 * Scheduler duty: releases waiting jobs whose approvals are in and whose wait has run, and denies
 * those whose approval window closed. Returns the runs whose jobs moved.
 */
export async function settleGates(deps: ControllerDeps): Promise<Set<string>> {
  const waiting = await deps.db
    .selectFrom("jobs")
    .selectAll()
    .where("state", "=", "waiting_approval")
    .execute();
  const moved = new Set<string>();
  const now = deps.clock.now();
  for (const job of waiting) {
    const gate = JSON.parse(job.gate ?? "null") as Gate | null;
    if (!gate) continue;
    const { approvals, approvedAt } = await approvalsInTime(deps, job, gate);
    // The wait timer runs from the moment the last required approval came in (from queueing when
    // none is required), so an approver cannot skip it by approving late.
    const waitOver = approvedAt !== null && now.getTime() >= Date.parse(approvedAt) + gate.waitSeconds * 1000;
    if (approvals >= gate.requiredApprovals && waitOver) {
      const released = await transitionJob(
        deps.db,
        job.id,
        "admitted",
        {
          actor: "scheduler",
          data: { environment: gate.environment, approvals },
          expect: ["waiting_approval"],
        },
        deps.clock,
      );
      if (released) moved.add(job.run_id);
    } else if (now.getTime() > Date.parse(gate.deadline)) {
      const detail = `approval for environment ${gate.environment} expired (${approvals}/${gate.requiredApprovals} approvals)`;
      const expired = await transitionJob(
        deps.db,
        job.id,
        "denied",
        {
          actor: "scheduler",
          patch: { conclusion: "denied", detail, finished_at: now.toISOString() },
          data: { reason: "approval_expired" },
          expect: ["waiting_approval"],
        },
        deps.clock,
      );
      if (expired) moved.add(job.run_id);
    }
  }
  return moved;
}

/**
 * Approvals given before the gate's deadline (one per user, by the table's unique key), and when
 * the required number was reached: null while it has not been.
 */
async function approvalsInTime(
  deps: ControllerDeps,
  job: JobTable,
  gate: Gate,
): Promise<{ approvals: number; approvedAt: string | null }> {
  const rows = await deps.db
    .selectFrom("approvals")
    .select(["user_id", "created_at"])
    .where("job_id", "=", job.id)
    .where("decision", "=", "approved")
    .orderBy("created_at")
    .execute();
  const deadline = Date.parse(gate.deadline);
  const users = new Set<string>();
  const times: string[] = [];
  for (const r of rows) {
    if (Date.parse(r.created_at) > deadline || users.has(r.user_id)) continue;
    users.add(r.user_id);
    times.push(r.created_at);
  }
  const approvedAt = gate.requiredApprovals === 0 ? gate.since : (times[gate.requiredApprovals - 1] ?? null);
  return { approvals: users.size, approvedAt };
}
