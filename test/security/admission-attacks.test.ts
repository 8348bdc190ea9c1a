// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is GitHub expression syntax, not a JS template
import { existsSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { JobView, RunView } from "../../src/controller/views.js";
import { Airlock, GitRepo, jobByKey, jobCgroups, runIdOf } from "../e2e/cli-harness.js";

// Every case starts CLI processes on a shared two-core host; a slow one is not a failed one.
vi.setConfig({ testTimeout: 300_000, hookTimeout: 300_000 });

/**
 * Attacks on intake and admission, driven through the built CLI. Each one either is refused at
 * intake (non-zero exit, one error line naming the place, no row, no workspace, a `run.refused`
 * audit record) or reaches admission and is denied with the deciding policy named, before any
 * sandbox exists. Run `npm run build` first.
 */
let airlock: Airlock;
let repo: GitRepo;
const repoName = "attack/admission";
const wf = (name: string) => `.airlock/workflows/${name}.yml`;

const deploy = `on: [push, pull_request, workflow_dispatch]
jobs:
  deploy:
    runs-on: airlock
    environment: prod
    steps:
      - uses: actions/checkout@v4
      - run: cat marker.txt
`;

beforeAll(async () => {
  airlock = Airlock.create("admission-attacks");
  repo = GitRepo.create("admission-attacks", {
    "marker.txt": "marker-one\n",
    [wf("deploy")]: deploy,
    [wf("spellings")]: `on: [push, pull_request]
jobs:
  map-form:
    runs-on: airlock
    environment: {name: prod}
    steps: [{run: echo map-form-ran}]
  upper-case:
    runs-on: airlock
    environment: PROD
    steps: [{run: echo upper-case-ran}]
`,
    [wf("perms")]: `on: pull_request
permissions: write-all
jobs:
  inherits-write-all:
    runs-on: airlock
    steps: [{run: echo ran}]
  contents:
    runs-on: airlock
    permissions: {contents: write}
    steps: [{run: echo ran}]
  deployments:
    runs-on: airlock
    permissions: {deployments: write}
    steps: [{run: echo ran}]
  id-token:
    runs-on: airlock
    permissions: {id-token: write}
    steps: [{run: echo ran}]
  packages:
    runs-on: airlock
    permissions: {packages: write}
    steps: [{run: echo ran}]
  chained:
    needs: contents
    if: always()
    continue-on-error: true
    runs-on: airlock
    permissions: {actions: write}
    steps: [{run: echo ran}]
`,
    [wf("privileged")]: `on: push
jobs:
  container-privileged:
    runs-on: airlock
    container: {options: --privileged}
    steps: [{run: echo ran}]
  host-volume:
    runs-on: airlock
    container: {volumes: ["/etc:/host-etc"]}
    steps: [{run: echo ran}]
  mounts:
    runs-on: airlock
    mounts: [/root]
    steps: [{run: echo ran}]
  privileged-string:
    runs-on: airlock
    privileged: "true"
    steps: [{run: echo ran}]
`,
    [wf("dispatch")]: `on:
  workflow_dispatch:
    inputs:
      target: { type: choice, options: [staging, prod], default: staging }
jobs:
  show:
    runs-on: airlock
    env:
      TARGET: \${{ inputs.target }}
    steps:
      - run: echo "target=$TARGET"
`,
  });
  repo.git("branch", "feature");
  // A tag named like the protected branch, on an unprotected commit.
  repo.git("checkout", "-q", "-b", "fork-work");
  repo.commit({ "marker.txt": "from-a-fork\n" }, "fork");
  repo.git("tag", "main");
  repo.git("update-ref", "refs/pull/1/head", "HEAD");
  repo.git("checkout", "-q", "main");
  for (const args of [
    ["repo", "add", repoName, "--source", repo.dir, "--protected-branch", "main", "--protected-tag", "v*"],
    ["env", "set", repoName, "prod", "--branch", "main", "--approvals", "1", "--expire", "300"],
  ]) {
    const r = await airlock.cli(...args);
    expect(r.status, r.stderr).toBe(0);
  }
}, 120_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

function counts(): { runs: number; jobs: number; steps: number } {
  const n = (t: string) => airlock.query<{ n: number }>(`select count(*) as n from ${t}`)[0]?.n ?? 0;
  return { runs: n("runs"), jobs: n("jobs"), steps: n("steps") };
}

/** Refused at intake: one error line matching `error`, nothing stored or created, audited. */
async function expectRefused(args: string[], error: RegExp, code?: string): Promise<void> {
  const before = counts();
  const refusals = auditTypes({ type: "run.refused" }).length;
  const r = await airlock.cli("run", repoName, ...args);
  expect(r.status, r.stdout + r.stderr).not.toBe(0);
  expect(r.status).not.toBeNull();
  expect(r.stdout).toBe("");
  const lines = r.stderr.trimEnd().split("\n");
  expect(lines[0]).toMatch(/^error: /);
  expect(
    lines.slice(1).every((l) => l.startsWith("hint: ")),
    r.stderr,
  ).toBe(true);
  expect(lines[0]).toMatch(error);
  expect(counts()).toEqual(before);
  expect(airlock.workspaces()).toEqual([]);
  const after = await airlock.audit({ type: "run.refused" });
  expect(after).toHaveLength(refusals + 1);
  const refusal = after.at(-1);
  expect(refusal?.runId).toBeNull();
  if (code) expect(refusal?.data.code).toBe(code);
}

/** Commits `files` on a fresh branch off main and returns the branch. */
let branches = 0;
function branchWith(files: Record<string, string>): string {
  const branch = `attack-${++branches}`;
  // refs/heads/: a tag named main exists too.
  repo.git("checkout", "-q", "-b", branch, "refs/heads/main");
  repo.commit(files, branch);
  repo.git("checkout", "-q", "refs/heads/main");
  repo.git("symbolic-ref", "HEAD", "refs/heads/main");
  return branch;
}

async function runOf(args: string[], ok: boolean): Promise<RunView> {
  const r = await airlock.cli("run", repoName, ...args);
  expect(r.status === 0, r.stdout + r.stderr).toBe(ok);
  return airlock.run(runIdOf(r.stdout));
}

async function expectDenied(job: JobView, policy: string): Promise<void> {
  expect(job.state).toBe("denied");
  expect(job.decision?.allowed).toBe(false);
  expect(job.decision?.reasons).toContain(policy);
  expect(job.runnerId).toBeNull();
  expect(job.startedAt).toBeNull();
  expect(auditTypes({ job: job.id })).toEqual(["job.denied"]);
  // Never provisioned: no workspace, no cgroup, no step that left pending.
  expect(existsSync(airlock.workspaceDir(job.id))).toBe(false);
  expect(jobCgroups(job.id)).toEqual([]);
  const steps = airlock.query<{ state: string }>("select state from steps where job_id = ?", job.id);
  expect(steps.every((s) => s.state === "pending")).toBe(true);
}

/** Audit event types straight from the store (one CLI process per look is slow on a busy host). */
function auditTypes(filter: { type?: string; job?: string }): string[] {
  const rows = filter.job
    ? airlock.query<{ type: string }>(
        "select type from audit_events where job_id = ? order by seq",
        filter.job,
      )
    : airlock.query<{ type: string }>(
        "select type from audit_events where type = ? order by seq",
        filter.type,
      );
  return rows.map((r) => r.type);
}

async function waitingJob(): Promise<JobView> {
  for (let i = 0; i < 150; i++) {
    const [job] = await airlock.json<JobView[]>("pending");
    if (job) return job;
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error("no job started waiting for approval");
}

describe("deploy authority from a pull request", () => {
  it("environment in map form and in another case is denied to a pull request", async () => {
    const run = await runOf(["--event", "pull_request", "--workflow", wf("spellings")], false);
    await expectDenied(jobByKey(run, "map-form"), "pull-request-no-environment");
    await expectDenied(jobByKey(run, "upper-case"), "pull-request-no-environment");
  });

  it("write-all and every deploy scope, at workflow and job level, are denied to a pull request", async () => {
    const run = await runOf(["--event", "pull_request", "--workflow", wf("perms")], false);
    for (const key of ["inherits-write-all", "contents", "deployments", "id-token", "packages", "chained"]) {
      await expectDenied(jobByKey(run, key), "pull-request-no-deploy");
    }
  });

  it("a pull request from a branch named main is not the protected main", async () => {
    const run = await runOf(["--event", "pull_request", "--ref", "main", "--workflow", wf("deploy")], false);
    await expectDenied(jobByKey(run, "deploy"), "pull-request-no-environment");
  });
});

describe("environments and refs", () => {
  it("`environment: PROD` is the protected prod: it waits for prod's approval", async () => {
    const started = airlock.start(["run", repoName, "--workflow", wf("spellings")]);
    const first = await waitingJob();
    expect(first.gate).toMatchObject({ environment: "prod", requiredApprovals: 1 });
    expect((await airlock.cli("reject", first.id)).status).toBe(0);
    const second = await waitingJob();
    expect(second.gate).toMatchObject({ environment: "prod" });
    expect((await airlock.cli("reject", second.id)).status).toBe(0);
    const result = await started.exited;
    expect(result.status).not.toBe(0);
    const run = await airlock.run(runIdOf(result.stdout));
    for (const key of ["map-form", "upper-case"]) {
      expect(jobByKey(run, key)).toMatchObject({ state: "denied", runnerId: null });
    }
    expect(result.stdout).not.toMatch(/map-form-ran|upper-case-ran/);
  });

  it("a tag named like the protected branch is not protected", async () => {
    const run = await runOf(["--ref", "refs/tags/main", "--workflow", wf("deploy")], false);
    await expectDenied(jobByKey(run, "deploy"), "environment-requires-protected-ref");
  });

  it("an unprotected branch cannot deploy", async () => {
    const run = await runOf(["--ref", "feature", "--workflow", wf("deploy")], false);
    await expectDenied(jobByKey(run, "deploy"), "environment-requires-protected-ref");
  });

  it.each([
    ["refs/pull/1/head", /is neither a branch nor a tag/],
    ["refs/remotes/origin/main", /is neither a branch nor a tag/],
    ["main/../fork-work", /is not a valid ref name/],
    ["refs/heads/./main", /is not a valid ref name/],
    ["main;id", /is not a valid ref name/],
    ["$(id)", /is not a valid ref name/],
    ["main\nerror: forged", /is not a valid ref name/],
    ["-main", /is not a valid ref name/],
  ])("refuses --ref %j at intake", async (ref, error) => {
    await expectRefused(["--ref", ref, "--workflow", wf("deploy")], error, "REF_NOT_FOUND");
  });

  it("refuses a sha that is not on the ref it is given with", async () => {
    const forkSha = repo.git("rev-parse", "fork-work").trim();
    await expectRefused(
      ["--ref", "main", "--sha", forkSha, "--workflow", wf("deploy")],
      /is not on refs\/heads\/main/,
      "REF_NOT_FOUND",
    );
  });

  it("runs exactly the admitted sha, even when the ref moves while the job waits", async () => {
    const started = airlock.start(["run", repoName, "--workflow", wf("deploy")]);
    const job = await waitingJob();
    const admitted = (await airlock.run(job.runId)).sha;
    repo.commit({ "marker.txt": "moved-after-intake\n" }, "move main");
    expect(repo.git("rev-parse", "main").trim()).not.toBe(admitted);
    expect((await airlock.cli("approve", job.id)).status).toBe(0);
    const result = await started.exited;
    expect(result.status, result.stdout + result.stderr).toBe(0);
    const logs = await airlock.logs(job.id);
    expect(logs).toContain("marker-one");
    expect(logs).not.toContain("moved-after-intake");
    expect(logs).toContain(admitted);
  }, 120_000);
});

describe("privilege and host mounts", () => {
  it("every spelling is denied by policy before a sandbox exists", async () => {
    const run = await runOf(["--workflow", wf("privileged")], false);
    await expectDenied(jobByKey(run, "container-privileged"), "no-privileged");
    await expectDenied(jobByKey(run, "privileged-string"), "no-privileged");
    await expectDenied(jobByKey(run, "host-volume"), "no-host-mounts");
    await expectDenied(jobByKey(run, "mounts"), "no-host-mounts");
  });

  it.each([
    ["privileged: yes", "    privileged: yes\n", 5],
    ["privileged: 1", "    privileged: 1\n", 5],
    ["privileged: expression", "    privileged: ${{ true }}\n", 5],
    ["an empty container", "    container: {}\n", 5],
    ["a container image", "    container: ubuntu:24.04\n", 5],
    ["services", "    services: {db: {image: postgres}}\n", 5],
  ])("%s is refused at intake, naming the line", async (_name, keys, line) => {
    const ref = branchWith({
      [wf("ci")]: `on: push\njobs:\n  a:\n    runs-on: airlock\n${keys}    steps:\n      - run: echo ran\n`,
    });
    await expectRefused(["--ref", ref, "--workflow", wf("ci")], new RegExp(`${wf("ci")}:${line}:\\d+: `));
  });
});

describe("workflow parser attacks", () => {
  const ci = wf("ci");
  it.each([
    ["a third-party action", "      - uses: evil/exfiltrate@v1\n", /:6:15: .*not a built-in action/],
    ["a local action", "      - uses: ./local\n", /:6:15: .*local and docker actions are not supported/],
    ["a docker action", "      - uses: docker://alpine:3\n", /:6:15: .*local and docker actions/],
    ["an odd action ref", "      - uses: actions/checkout@v4$(id)\n", /:6:15: .*not a tag, branch or sha/],
    [
      "a deep expression",
      `      - run: echo \${{ github${".a".repeat(3000)} }}\n`,
      /:6:\d+: invalid expression/,
    ],
    [
      "an environment look-alike",
      "      - run: echo\n    environment: prоd\n",
      /:7:18: .*not a valid environment name/,
    ],
  ])("%s is refused with file:line:col", async (_name, steps, error) => {
    const ref = branchWith({ [ci]: `on: push\njobs:\n  a:\n    runs-on: airlock\n    steps:\n${steps}` });
    await expectRefused(["--ref", ref, "--workflow", ci], new RegExp(`^error: ${ci}${error.source}`));
  });

  it("a billion-laughs alias bomb is refused quickly", async () => {
    let text = "on: push\nx0: &x0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
    for (let i = 1; i < 9; i++)
      text += `x${i}: &x${i} [${Array(10)
        .fill(`*x${i - 1}`)
        .join(", ")}]\n`;
    text += "jobs:\n  a:\n    runs-on: airlock\n    steps: *x8\n";
    const ref = branchWith({ [ci]: text });
    const start = Date.now();
    await expectRefused(["--ref", ref, "--workflow", ci], /aliases expand the workflow/, "WORKFLOW_INVALID");
    expect(Date.now() - start).toBeLessThan(20_000);
  });

  it("duplicate keys are refused, naming the second", async () => {
    const ref = branchWith({
      [ci]: "on: push\njobs:\n  a:\n    runs-on: airlock\n    privileged: false\n    privileged: true\n    steps:\n      - run: echo\n",
    });
    await expectRefused(
      ["--ref", ref, "--workflow", ci],
      new RegExp(`^error: ${ci}:6:5: YAML: Map keys must be unique`),
    );
  });
});

describe("script injection", () => {
  it("an input spliced into run: is refused at intake", async () => {
    const ci = wf("ci");
    const ref = branchWith({
      [ci]: `on:\n  workflow_dispatch:\n    inputs:\n      msg: {}\njobs:\n  a:\n    runs-on: airlock\n    steps:\n      - run: echo \${{ inputs.msg }}\n`,
    });
    await expectRefused(
      ["--ref", ref, "--workflow", ci, "--event", "workflow_dispatch", "--input", "msg=$(touch /tmp/pwned)"],
      new RegExp(`^error: ${ci}:9:\\d+: .*splices inputs\\.msg into the script text`),
      "WORKFLOW_INVALID",
    );
  });

  it("passed through env, a hostile input is data, not code", async () => {
    const marker = `/tmp/airlock-injected-${process.pid}`;
    const r = await airlock.cli(
      "run",
      repoName,
      "--workflow",
      wf("dispatch"),
      "--event",
      "workflow_dispatch",
      "--input",
      "target=prod",
    );
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("target=prod");
    await expectRefused(
      ["--workflow", wf("dispatch"), "--event", "workflow_dispatch", "--input", `target=$(touch ${marker})`],
      /input "target" must be one of staging, prod/,
      "REQUEST_INVALID",
    );
  });

  it.each([
    [["--input", "nope=1"], /declares no input "nope"/],
    [["--input", "target=prod"], /inputs are only for workflow_dispatch/],
  ])("bad inputs %j are refused", async (extra, error) => {
    const event = error.source.includes("only for") ? "push" : "workflow_dispatch";
    await expectRefused(
      ["--workflow", wf(event === "push" ? "deploy" : "dispatch"), "--event", event, ...extra],
      error,
    );
  });
});
