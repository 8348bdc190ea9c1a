import { resolve } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunView } from "../../src/controller/views.js";
import { Airlock, clean, GitRepo, jobByKey, leftovers, runIdOf } from "./cli-harness.js";

/** What a user sees of whole runs: the example goes green; failures, skips and outputs behave like GitHub's. */
let airlock: Airlock;
const repos: GitRepo[] = [];

beforeAll(async () => {
  airlock = Airlock.create("outcomes");
}, 20 * 60_000);

afterAll(() => {
  airlock?.cleanup();
  for (const r of repos) r.cleanup();
});

describe("examples/hello-node through the CLI", () => {
  it("runs green, uploads its artifact and keeps the test output", async () => {
    const repo = GitRepo.create("hello", {}, resolve("examples/hello-node"));
    repos.push(repo);
    expect((await airlock.cli("repo", "add", "example/hello-node", "--source", repo.dir)).status).toBe(0);

    const r = await airlock.cli("run", "example/hello-node", "--ref", "main");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const runId = runIdOf(r.stdout);

    const run = await airlock.run(runId);
    expect(run.state).toBe("succeeded");
    const test = jobByKey(run, "test");
    const build = jobByKey(run, "build");
    for (const job of [test, build]) {
      expect(job.conclusion).toBe("succeeded");
      expect(job.state).toBe("torn_down");
    }
    // needs: build starts only after test has finished.
    expect(Date.parse(build.startedAt ?? "")).toBeGreaterThanOrEqual(Date.parse(test.finishedAt ?? ""));
    expect(build.outputs.digest).toMatch(/^[0-9a-f]{64}$/);

    const uploads = await airlock.audit({ type: "artifact.uploaded", run: runId });
    expect(uploads).toHaveLength(1);
    expect(uploads[0]?.jobId).toBe(build.id);
    expect(JSON.stringify(uploads[0]?.data)).toContain("hello-dist");

    const logs = await airlock.cli("logs", test.id);
    expect(logs.status).toBe(0);
    expect(logs.stdout).toContain("ok 1 - greets by name");
    expect(logs.stdout).toContain("ok 2 - refuses an empty name");
    expect(logs.stdout).toMatch(/# pass 2\n/);

    for (const job of [test, build]) expect(await leftovers(airlock, job.id)).toEqual(clean);
  });
});

describe("failure, conditions and outputs", () => {
  const workflow = `name: outcomes
on: push
jobs:
  produce:
    runs-on: airlock
    outputs:
      greeting: \${{ steps.say.outputs.greeting }}
    steps:
      - id: say
        run: echo "greeting=hello from produce" >> "$GITHUB_OUTPUT"
      - name: flaky
        continue-on-error: true
        run: exit 3
      - name: after flaky
        run: echo after-flaky-ran
  consume:
    needs: produce
    runs-on: airlock
    steps:
      - run: echo "consumed <\${{ needs.produce.outputs.greeting }}>"
  breaks:
    runs-on: airlock
    steps:
      - run: echo before-break
      - name: boom
        run: exit 7
      - name: never
        run: echo never-ran
      - name: on failure
        if: failure()
        run: echo failure-handler-ran
      - name: cleanup
        if: always()
        run: echo always-step-ran
  downstream:
    needs: breaks
    runs-on: airlock
    steps:
      - run: echo downstream-ran
`;
  let runId: string;
  let exit: number | null;
  let run: RunView;

  beforeAll(async () => {
    const repo = GitRepo.create("outcomes", { ".airlock/workflows/ci.yml": workflow });
    repos.push(repo);
    expect((await airlock.cli("repo", "add", "e2e/outcomes", "--source", repo.dir)).status).toBe(0);
    const r = await airlock.cli("run", "e2e/outcomes");
    exit = r.status;
    runId = runIdOf(r.stdout);
    run = await airlock.run(runId); // Finished, so it no longer changes.
  });

  it("fails the run when a step fails", async () => {
    expect(exit).not.toBe(0);
    expect(run.state).toBe("failed");
    const breaks = jobByKey(run, "breaks");
    expect(breaks.conclusion).toBe("failed");
    expect(breaks.detail).toMatch(/step 2 \(boom\) exited with code 7/);
  });

  it("skips dependants of the failed job, and runs nothing of theirs", async () => {
    const downstream = jobByKey(run, "downstream");
    expect(downstream.conclusion).toBe("skipped");
    expect(downstream.startedAt).toBeNull();
    expect(downstream.runnerId).toBeNull();
    expect(await airlock.audit({ type: "job.provisioning", job: downstream.id })).toEqual([]);
  });

  it("skips later steps of the failed job but runs failure() and always() steps", async () => {
    const breaks = await airlock.job(jobByKey(run, "breaks").id);
    expect(breaks.steps?.map((s) => [s.name, s.state, s.exitCode])).toEqual([
      ["Run echo before-break", "succeeded", 0],
      ["boom", "failed", 7],
      ["never", "skipped", null],
      ["on failure", "succeeded", 0],
      ["cleanup", "succeeded", 0],
    ]);
    const logs = (await airlock.cli("logs", breaks.id)).stdout;
    expect(logs).toContain("before-break");
    expect(logs).toContain("failure-handler-ran");
    expect(logs).toContain("always-step-ran");
    expect(logs).not.toContain("never-ran");
  });

  it("lets a continue-on-error step fail without failing its job", async () => {
    const produce = await airlock.job(jobByKey(run, "produce").id);
    expect(produce.conclusion).toBe("succeeded");
    expect(produce.steps?.map((s) => [s.name, s.state, s.exitCode])).toEqual([
      ['Run echo "greeting=hello from produce" >> "$GITHUB_OUTPUT"', "succeeded", 0],
      ["flaky", "failed", 3],
      ["after flaky", "succeeded", 0],
    ]);
    expect((await airlock.cli("logs", produce.id)).stdout).toContain("after-flaky-ran");
  });

  it("passes $GITHUB_OUTPUT step outputs through job outputs to needs.<job>.outputs", async () => {
    const produce = jobByKey(run, "produce");
    const consume = jobByKey(run, "consume");
    expect(produce.outputs).toEqual({ greeting: "hello from produce" });
    expect(consume.conclusion).toBe("succeeded");
    expect((await airlock.cli("logs", consume.id)).stdout).toContain("consumed <hello from produce>");
  });

  it("leaves nothing of any job behind", async () => {
    for (const job of run.jobs ?? []) expect(await leftovers(airlock, job.id)).toEqual(clean);
    expect(airlock.workspaces()).toEqual([]);
  });
});
