import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listAudit } from "../audit/log.js";
import type { Principal } from "../auth/principal.js";
import type { Role } from "../auth/roles.js";
import { createUser, ensureLocalAdmin } from "../auth/users.js";
import { newId } from "../ids.js";
import { registerRepo } from "../repos/registry.js";
import { type Db, openSqlite } from "../store/database.js";
import { decideApproval, type Gate, settleGates } from "./approvals.js";
import type { ControllerDeps } from "./deps.js";
import { getJobRow } from "./job-store.js";

/** Approval attacks on the controller itself, under a frozen clock. */
let db: Db;
let dir: string;
let now: Date;
let deps: ControllerDeps;
let users: Record<string, Principal>;

const t0 = new Date("2030-01-01T00:00:00Z");

beforeEach(async () => {
  db = await openSqlite(":memory:");
  now = new Date(t0);
  deps = { db, clock: { now: () => now } } as unknown as ControllerDeps;
  const admin = await ensureLocalAdmin(db);
  users = { admin };
  for (const [name, role] of [
    ["alice", "approver"],
    ["bob", "approver"],
    ["sam", "submitter"],
  ] as [string, Role][]) {
    const u = await createUser(db, { name, role }, admin);
    users[name] = { userId: u.id, userName: u.name, role: u.role, tokenId: null };
  }
  dir = mkdtempSync(join(tmpdir(), "airlock-approvals-"));
  execFileSync("git", ["init", "-q", "-b", "main", dir]);
});

afterEach(async () => {
  await db.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** A job waiting at a gate, started by `actor`. */
async function waitingJob(actor: string, gate: Partial<Gate> = {}): Promise<string> {
  const repo = await registerRepo(
    db,
    { name: `acme/r${newId("repo").slice(-6).toLowerCase()}`, source: dir },
    "admin",
  );
  const runId = newId("run");
  const jobId = newId("job");
  const at = now.toISOString();
  await db
    .insertInto("runs")
    .values({
      id: runId,
      repo_id: repo.id,
      run_number: 1,
      ref: "refs/heads/main",
      ref_type: "branch",
      sha: "0".repeat(40),
      event: "push",
      actor,
      workflow_path: "wf.yml",
      workflow_name: "wf",
      inputs: "{}",
      state: "queued",
      created_at: at,
      updated_at: at,
    })
    .execute();
  const full: Gate = {
    environment: "prod",
    requiredApprovals: 1,
    approvers: [],
    preventSelfReview: false,
    waitSeconds: 0,
    since: at,
    deadline: new Date(now.getTime() + 3600_000).toISOString(),
    ...gate,
  };
  await db
    .insertInto("jobs")
    .values({
      id: jobId,
      run_id: runId,
      key: "deploy",
      name: "deploy",
      state: "waiting_approval",
      conclusion: null,
      needs: "[]",
      spec: "{}",
      runner_id: null,
      decision: null,
      detail: null,
      cancel_requested_at: null,
      outputs: null,
      gate: JSON.stringify(full),
      created_at: at,
      updated_at: at,
      started_at: null,
      finished_at: null,
    })
    .execute();
  return jobId;
}

const state = async (jobId: string) => (await getJobRow(db, jobId)).state;
const later = (seconds: number) => {
  now = new Date(now.getTime() + seconds * 1000);
};

describe("approval attacks", () => {
  it("a submitter cannot approve, even where no approvers are named; the refusal is audited", async () => {
    const job = await waitingJob("alice");
    await expect(decideApproval(deps, job, users.sam as Principal, "approved")).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await settleGates(deps);
    expect(await state(job)).toBe("waiting_approval");
    const refused = await listAudit(db, { type: "job.approval_refused" });
    expect(refused.map((r) => r.jobId)).toEqual([job]);
  });

  it("the submitter cannot approve their own run under prevent-self-review", async () => {
    const job = await waitingJob("alice", { preventSelfReview: true });
    await expect(decideApproval(deps, job, users.alice as Principal, "approved")).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await decideApproval(deps, job, users.bob as Principal, "approved");
    await settleGates(deps);
    expect(await state(job)).toBe("admitted");
  });

  it("one approver counts once towards two required approvals", async () => {
    const job = await waitingJob("sam", { requiredApprovals: 2 });
    await decideApproval(deps, job, users.alice as Principal, "approved");
    await expect(decideApproval(deps, job, users.alice as Principal, "approved")).rejects.toMatchObject({
      code: "CONFLICT",
    });
    // Racing decisions by one user: the table keeps one.
    const race = await Promise.allSettled([
      decideApproval(deps, job, users.bob as Principal, "approved"),
      decideApproval(deps, job, users.bob as Principal, "approved"),
    ]);
    expect(race.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    await settleGates(deps);
    expect(await state(job)).toBe("admitted");
  });

  it("a user not named among the approvers cannot approve", async () => {
    const job = await waitingJob("sam", { approvers: ["alice"] });
    await expect(decideApproval(deps, job, users.bob as Principal, "approved")).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    await settleGates(deps);
    expect(await state(job)).toBe("waiting_approval");
  });

  it("an approval after the deadline is refused and the job expires", async () => {
    const job = await waitingJob("sam", { deadline: new Date(t0.getTime() + 60_000).toISOString() });
    later(61);
    // The scheduler has not yet run: the job still reads waiting_approval.
    expect(await state(job)).toBe("waiting_approval");
    await expect(decideApproval(deps, job, users.alice as Principal, "approved")).rejects.toMatchObject({
      code: "CONFLICT",
    });
    await settleGates(deps);
    expect(await state(job)).toBe("denied");
  });

  it("an approval stored after the deadline does not count", async () => {
    const job = await waitingJob("sam", { deadline: new Date(t0.getTime() + 60_000).toISOString() });
    later(61);
    await db
      .insertInto("approvals")
      .values({
        id: newId("apv"),
        job_id: job,
        user_id: users.alice?.userId as string,
        user_name: "alice",
        decision: "approved",
        comment: null,
        created_at: now.toISOString(),
      })
      .execute();
    await settleGates(deps);
    expect(await state(job)).toBe("denied");
  });

  it("a rejection cannot be overturned by a later approval", async () => {
    const job = await waitingJob("sam", { requiredApprovals: 1 });
    await decideApproval(deps, job, users.alice as Principal, "rejected");
    await expect(decideApproval(deps, job, users.bob as Principal, "approved")).rejects.toMatchObject({
      code: "CONFLICT",
    });
    await settleGates(deps);
    expect(await state(job)).toBe("denied");
  });

  it("the wait timer runs from the approval, not from queueing", async () => {
    const job = await waitingJob("sam", { waitSeconds: 300 });
    later(600);
    await decideApproval(deps, job, users.alice as Principal, "approved");
    await settleGates(deps);
    expect(await state(job)).toBe("waiting_approval");
    later(299);
    await settleGates(deps);
    expect(await state(job)).toBe("waiting_approval");
    later(2);
    await settleGates(deps);
    expect(await state(job)).toBe("admitted");
  });

  it("a wait timer without approvals runs from queueing", async () => {
    const job = await waitingJob("sam", { requiredApprovals: 0, waitSeconds: 30 });
    await settleGates(deps);
    expect(await state(job)).toBe("waiting_approval");
    later(31);
    await settleGates(deps);
    expect(await state(job)).toBe("admitted");
  });
});
