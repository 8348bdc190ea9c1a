import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobView } from "../../src/controller/views.js";
import { Airlock, GitRepo, jobByKey, runIdOf } from "./cli-harness.js";

/** Environments with protection rules: a gated job waits, and only an approval releases it. */
let airlock: Airlock;
let repo: GitRepo;

beforeAll(async () => {
  airlock = Airlock.create("approvals");
  repo = GitRepo.create("approvals", {
    ".airlock/workflows/deploy.yml": `on: push
jobs:
  deploy:
    runs-on: airlock
    environment: prod
    steps:
      - run: echo deployed-after-approval
`,
  });
  repo.git("branch", "release/2");
  for (const args of [
    [
      "repo",
      "add",
      "e2e/approvals",
      "--source",
      repo.dir,
      "--protected-branch",
      "main",
      "--protected-branch",
      "release/*",
    ],
    ["env", "set", "e2e/approvals", "prod", "--branch", "main", "--approvals", "1", "--expire", "120"],
  ]) {
    const r = await airlock.cli(...args);
    expect(r.status, r.stderr).toBe(0);
  }
}, 120_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

async function waitingJob(): Promise<JobView> {
  for (let i = 0; i < 100; i++) {
    const pending = await airlock.json<JobView[]>("pending");
    if (pending[0]) return pending[0];
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("no job started waiting for approval");
}

describe("environment approvals", () => {
  it("holds the job until an approver releases it, and audits the approval", async () => {
    const run = airlock.start(["run", "e2e/approvals"]);
    const job = await waitingJob();
    expect(job.state).toBe("waiting_approval");
    expect(job.gate).toMatchObject({ environment: "prod", requiredApprovals: 1 });
    expect((await airlock.job(job.id)).steps?.every((s) => s.state === "pending")).toBe(true);

    const approved = await airlock.cli("approve", job.id, "--comment", "ship it");
    expect(approved.status, approved.stderr).toBe(0);
    const twice = await airlock.cli("approve", job.id);
    expect(twice.status).not.toBe(0);
    expect(twice.stderr).toMatch(/not waiting for approval|already approved/);

    const result = await run.exited;
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(result.stdout).toContain("waits for approval");
    expect(result.stdout).toContain("deployed-after-approval");
    const events = (await airlock.audit({ job: job.id })).map((e) => e.type);
    expect(events).toEqual(
      expect.arrayContaining(["job.waiting_approval", "job.approved", "job.admitted", "job.succeeded"]),
    );
    const approval = (await airlock.audit({ job: job.id, type: "job.approved" }))[0];
    expect(approval?.data).toMatchObject({
      environment: "prod",
      approvals: 1,
      required: 1,
      comment: "ship it",
    });
  });

  it("a rejection denies the job and nothing runs", async () => {
    const run = airlock.start(["run", "e2e/approvals"]);
    const job = await waitingJob();
    const rejected = await airlock.cli("reject", job.id, "--comment", "not today");
    expect(rejected.status, rejected.stderr).toBe(0);
    const result = await run.exited;
    expect(result.status).not.toBe(0);
    const after = jobByKey(await airlock.run(runIdOf(result.stdout)), "deploy");
    expect(after).toMatchObject({
      state: "denied",
      conclusion: "denied",
      detail: expect.stringMatching(/rejected by local-admin/),
    });
    expect(after.runnerId).toBeNull();
  });

  it("an unapproved job expires", async () => {
    const set = await airlock.cli(
      "env",
      "set",
      "e2e/approvals",
      "prod",
      "--branch",
      "main",
      "--approvals",
      "1",
      "--expire",
      "1",
    );
    expect(set.status, set.stderr).toBe(0);
    const result = await airlock.cli("run", "e2e/approvals");
    expect(result.status).not.toBe(0);
    const job = jobByKey(await airlock.run(runIdOf(result.stdout)), "deploy");
    expect(job.state).toBe("denied");
    expect(job.detail).toMatch(/approval for environment prod expired \(0\/1 approvals\)/);
    expect(job.runnerId).toBeNull();
  });

  it("refuses refs the environment does not allow, even protected ones", async () => {
    const result = await airlock.cli("run", "e2e/approvals", "--ref", "release/2");
    expect(result.status).not.toBe(0);
    const job = jobByKey(await airlock.run(runIdOf(result.stdout)), "deploy");
    expect(job.state).toBe("denied");
    expect(job.decision?.reasons).toEqual(["environment-ref-rules:prod"]);
  });

  it("honours prevent-self-review and named approvers", async () => {
    const set = await airlock.cli(
      "env",
      "set",
      "e2e/approvals",
      "prod",
      "--approvals",
      "1",
      "--prevent-self-review",
      "--expire",
      "60",
    );
    expect(set.status, set.stderr).toBe(0);
    const run = airlock.start(["run", "e2e/approvals"]);
    const job = await waitingJob();
    const self = await airlock.cli("approve", job.id);
    expect(self.status).not.toBe(0);
    expect(self.stderr).toMatch(/forbids self-review/);
    const refusals = await airlock.audit({ job: job.id, type: "job.approval_refused" });
    expect(refusals).toHaveLength(1);
    expect((await airlock.cli("cancel", job.runId)).status).toBe(0);
    expect((await run.exited).status).not.toBe(0);
  });
});
