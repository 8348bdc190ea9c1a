import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  Airlock,
  clean,
  GitRepo,
  jobByKey,
  jobCgroups,
  leftovers,
  runIdOf,
  uidBase,
  waitFor,
} from "./cli-harness.js";

/**
 * The three ways a job is killed before it ends by itself: its timeout, a user's cancel, and the
 * controller dying under it. Each must leave no process, cgroup or workspace behind.
 */
let airlock: Airlock;
let repo: GitRepo;

// Background children that survive a step unless the whole tree is killed: two plain ones and
// one re-parented away from the step's shell by the subshell.
const forkBomb = "sleep 1000 & sleep 1000 & (sleep 1000 &) ; wait";

beforeAll(async () => {
  airlock = Airlock.create("kill");
  repo = GitRepo.create("kill", {
    ".airlock/workflows/timeout.yml": `on: push
jobs:
  slow:
    runs-on: airlock
    timeout-minutes: 0.05
    steps:
      - run: ${forkBomb}
      - name: after
        run: echo after-timeout-ran
`,
    ".airlock/workflows/long.yml": `on: push
jobs:
  long:
    runs-on: airlock
    steps:
      - run: |
          echo long-started
          ${forkBomb}
`,
    ".airlock/workflows/quick.yml": `on: push
jobs:
  quick:
    runs-on: airlock
    steps:
      - run: echo quick
`,
  });
  const added = await airlock.cli("repo", "add", "e2e/kill", "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);
}, 20 * 60_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

/** Waits until the job's step has started its processes (the job is running and has said so). */
async function waitUntilRunning(runId: string): Promise<string> {
  return waitFor(`a running job in ${runId}`, async () => {
    const job = (await airlock.run(runId)).jobs?.[0];
    if (job?.state !== "running") return undefined;
    const logs = await airlock.cli("logs", job.id);
    return logs.stdout.includes("long-started") ? job.id : undefined;
  });
}

async function startedRun(cli: { output(): { stdout: string } }): Promise<string> {
  return waitFor(
    "the run id on stdout",
    async () => /^run (run_[a-z0-9]+) #/m.exec(cli.output().stdout)?.[1],
  );
}

describe("timeout-minutes", () => {
  it("accepts fractional minutes and kills the whole tree when they run out", async () => {
    const started = Date.now();
    const r = await airlock.cli("run", "e2e/kill", "--workflow", ".airlock/workflows/timeout.yml");
    expect(r.status).not.toBe(0);
    expect(Date.now() - started).toBeLessThan(30_000);

    const run = await airlock.run(runIdOf(r.stdout));
    expect(run.state).toBe("failed");
    const slow = await airlock.job(jobByKey(run, "slow").id);
    expect(slow.state).toBe("torn_down");
    expect(slow.conclusion).toBe("timed_out");
    expect(slow.detail).toMatch(/timed out after 0\.05 minute/);
    const took = Date.parse(slow.finishedAt ?? "") - Date.parse(slow.startedAt ?? "");
    expect(took).toBeGreaterThanOrEqual(2_500);
    expect(took).toBeLessThan(15_000);
    expect(slow.steps?.map((s) => s.state)).toEqual(["failed", "skipped"]);
    expect((await airlock.cli("logs", slow.id)).stdout).not.toContain("after-timeout-ran");

    expect(await airlock.jobUid(slow.id)).toBeGreaterThanOrEqual(uidBase);
    expect(await leftovers(airlock, slow.id)).toEqual(clean);
  });
});

describe("airlock cancel", () => {
  it("cancels a running job from a second CLI process and leaves nothing behind", async () => {
    const follower = airlock.start(["run", "e2e/kill", "--workflow", ".airlock/workflows/long.yml"]);
    try {
      const runId = await startedRun(follower);
      const jobId = await waitUntilRunning(runId);
      expect(jobCgroups(jobId).length).toBeGreaterThan(0);

      const cancel = await airlock.cli("cancel", runId);
      expect(cancel.status, cancel.stderr).toBe(0);
      expect(cancel.stdout).toContain(`cancellation requested for ${runId}`);

      const done = await follower.exited;
      expect(done.status).not.toBe(0);
      expect(done.stdout).toMatch(/⊘ long cancelled/);

      const run = await airlock.run(runId);
      expect(run.state).toBe("cancelled");
      const job = jobByKey(run, "long");
      expect(job.state).toBe("torn_down");
      expect(job.conclusion).toBe("cancelled");
      const cancelRequests = await airlock.audit({ type: "job.cancel_requested", job: jobId });
      expect(cancelRequests.map((e) => e.actor)).toEqual(["local-admin"]);
      expect(await leftovers(airlock, jobId)).toEqual(clean);
    } finally {
      follower.child.kill("SIGKILL");
    }
  });
});

describe("a controller killed mid-job", () => {
  it("is recovered by the next scheduling controller: job failed, torn down, sandbox reaped", async () => {
    const controller = airlock.start(["run", "e2e/kill", "--workflow", ".airlock/workflows/long.yml"]);
    const runId = await startedRun(controller);
    const jobId = await waitUntilRunning(runId);
    controller.child.kill("SIGKILL");
    const gone = await controller.exited;
    expect(gone.signal).toBe("SIGKILL");
    // Nobody has noticed yet: the store still says running.
    expect(jobByKey(await airlock.run(runId), "long").state).toBe("running");

    const next = await airlock.cli("run", "e2e/kill", "--workflow", ".airlock/workflows/quick.yml");
    expect(next.status, next.stdout + next.stderr).toBe(0);

    const run = await airlock.run(runId);
    expect(run.state).toBe("failed");
    const job = jobByKey(run, "long");
    expect(job.state).toBe("torn_down");
    expect(job.conclusion).toBe("failed");
    expect(job.detail).toMatch(/controller stopped/);
    expect(await leftovers(airlock, jobId)).toEqual(clean);
    expect(airlock.workspaces()).toEqual([]);

    const recovered = await airlock.audit({ type: "controller.recovered" });
    expect(recovered).toHaveLength(1);
    expect(recovered[0]?.data).toMatchObject({ jobsFailed: 1, workspacesRemoved: 1 });
    const verify = await airlock.cli("audit", "verify");
    expect(verify.status, verify.stdout).toBe(0);
    expect(verify.stdout).toMatch(/audit log intact/);
  });
});
