import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobView } from "../../src/controller/views.js";
import { Airlock, clean, GitRepo, jobByKey, leftovers, runIdOf } from "./cli-harness.js";

/** The default Cedar policies, seen from the CLI: what is denied never reaches a sandbox. */
let airlock: Airlock;
let repo: GitRepo;

const deployWf = ".airlock/workflows/deploy.yml";
const privilegedWf = ".airlock/workflows/privileged.yml";

beforeAll(async () => {
  airlock = Airlock.create("policy");
  repo = GitRepo.create("policy", {
    [deployWf]: `on: [push, pull_request]
jobs:
  deploy:
    runs-on: airlock
    environment: prod
    steps:
      - run: echo deploying-to-prod
`,
    [privilegedWf]: `on: push
jobs:
  priv:
    runs-on: airlock
    privileged: true
    steps:
      - run: echo privileged-ran
`,
  });
  repo.git("branch", "feature");
  const added = await airlock.cli(
    "repo",
    "add",
    "e2e/policy",
    "--source",
    repo.dir,
    "--protected-branch",
    "main",
  );
  expect(added.status, added.stderr).toBe(0);
}, 20 * 60_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

/** Runs the workflow and returns its one job, after checking the CLI's exit code. */
async function runJob(args: string[], key: string, ok: boolean): Promise<JobView> {
  const r = await airlock.cli("run", "e2e/policy", ...args);
  expect(r.status === 0, r.stdout + r.stderr).toBe(ok);
  return jobByKey(await airlock.run(runIdOf(r.stdout)), key);
}

/** A denied job: the deciding policy is named, and no runner, sandbox, step or log ever existed. */
async function expectDenied(job: JobView, policy: string): Promise<void> {
  expect(job.state).toBe("denied");
  expect(job.conclusion).toBe("denied");
  expect(job.decision?.allowed).toBe(false);
  expect(job.decision?.reasons).toContain(policy);
  expect(job.detail).toContain(policy);
  expect(job.runnerId).toBeNull();
  expect(job.startedAt).toBeNull();
  const full = await airlock.job(job.id);
  expect(full.steps?.every((s) => s.state === "pending")).toBe(true);
  const trail = (await airlock.audit({ job: job.id })).map((e) => e.type);
  expect(trail).toEqual(["job.denied"]);
  expect(await leftovers(airlock, job.id)).toEqual(clean);
}

describe("admission", () => {
  it("denies a pull_request job that asks for an environment", async () => {
    const job = await runJob(["--event", "pull_request", "--workflow", deployWf], "deploy", false);
    await expectDenied(job, "pull-request-no-environment");
  });

  it("denies a privileged job", async () => {
    const job = await runJob(["--workflow", privilegedWf], "priv", false);
    await expectDenied(job, "no-privileged");
  });

  it("denies an environment job pushed from an unprotected branch", async () => {
    const job = await runJob(["--ref", "feature", "--workflow", deployWf], "deploy", false);
    await expectDenied(job, "environment-requires-protected-ref");
    expect(job.decision?.reasons).toEqual(["environment-requires-protected-ref"]);
  });

  it("admits the same environment job pushed from the protected branch", async () => {
    const job = await runJob(["--ref", "main", "--workflow", deployWf], "deploy", true);
    expect(job.decision).toEqual({ allowed: true, reasons: ["run-job"] });
    expect(job.conclusion).toBe("succeeded");
    expect((await airlock.cli("logs", job.id)).stdout).toContain("deploying-to-prod");
  });
});
