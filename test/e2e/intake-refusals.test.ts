import { rmSync } from "node:fs";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/audit/events.js";
import type { RunView } from "../../src/controller/views.js";
import { Airlock, type CliResult, GitRepo } from "./cli-harness.js";

/**
 * Bad input is refused at intake: a non-zero exit, one clear error line that says what and where,
 * nothing half-made in the store or on disk, and the refusal in the audit log.
 */
let airlock: Airlock;
let repo: GitRepo;
const wf = ".airlock/workflows/ci.yml";

const good = `on: push
jobs:
  a:
    runs-on: airlock
    steps:
      - run: echo hi
`;

beforeAll(async () => {
  airlock = Airlock.create("intake");
  repo = GitRepo.create("intake", { [wf]: good });
  const added = await airlock.cli("repo", "add", "e2e/intake", "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);
}, 20 * 60_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

function tableCounts(): { runs: number; jobs: number; steps: number } {
  const db = new Database(airlock.database, { readonly: true });
  try {
    const count = (t: string) => (db.prepare(`select count(*) as n from ${t}`).get() as { n: number }).n;
    return { runs: count("runs"), jobs: count("jobs"), steps: count("steps") };
  } finally {
    db.close();
  }
}

let before: { runs: RunView[]; counts: ReturnType<typeof tableCounts>; refusals: number } | undefined;

/**
 * Submits a run that must be refused and checks everything a refusal promises. Returns the error
 * line and the new `run.refused` record.
 */
async function expectRefused(
  args: string[],
  error: RegExp,
): Promise<{ result: CliResult; line: string; refusal: AuditRecord }> {
  // Each case starts where the previous one's checks left the store.
  before ??= {
    runs: await airlock.runs(),
    counts: tableCounts(),
    refusals: (await airlock.audit({ type: "run.refused" })).length,
  };

  const result = await airlock.cli("run", ...args);
  expect(result.status, result.stdout + result.stderr).not.toBe(0);
  expect(result.status).not.toBeNull();
  const lines = result.stderr.trimEnd().split("\n");
  // One error line; anything else is the hint.
  expect(lines[0]).toMatch(/^error: /);
  expect(
    lines.slice(1).every((l) => l.startsWith("hint: ")),
    result.stderr,
  ).toBe(true);
  const line = lines[0] ?? "";
  expect(line).toMatch(error);
  expect(result.stdout).toBe("");

  // No run, job or step row (the store itself); `runs list` is compared once, at the end.
  expect(tableCounts()).toEqual(before.counts);
  expect(airlock.workspaces()).toEqual([]);

  const refusals = await airlock.audit({ type: "run.refused" });
  expect(refusals).toHaveLength(before.refusals + 1);
  before.refusals = refusals.length;
  const refusal = refusals.at(-1) as AuditRecord;
  expect(refusal.runId).toBeNull();
  expect(line).toContain(String(refusal.data.reason));
  return { result, line, refusal };
}

/** Commits a workflow at a fresh branch and returns the branch to pass as --ref. */
let branches = 0;
function branchWith(text: string): string {
  const branch = `case-${++branches}`;
  repo.git("checkout", "-q", "-b", branch, "main");
  repo.commit({ [wf]: text }, branch);
  repo.git("checkout", "-q", "main");
  return branch;
}

describe("refused at intake", () => {
  it("malformed YAML", async () => {
    const ref = branchWith("on: push\njobs:\n  a:\n    runs-on: airlock\n    steps: [\n      - run: echo\n");
    const { refusal } = await expectRefused(
      ["e2e/intake", "--ref", ref],
      new RegExp(`^error: ${wf}:6:7: YAML: `),
    );
    expect(refusal.data.code).toBe("WORKFLOW_INVALID");
  });

  it("an unknown key, named with its line and column", async () => {
    const ref = branchWith(
      good.replace("      - run: echo hi\n", "      - run: echo hi\n        step: oops\n"),
    );
    const { refusal } = await expectRefused(
      ["e2e/intake", "--ref", ref],
      new RegExp(`^error: ${wf}:7:9: unknown key "step" in step 1 of job "a"`),
    );
    expect(refusal.data.code).toBe("WORKFLOW_INVALID");
  });

  it("a bad expression", async () => {
    const ref = branchWith(good.replace("echo hi", `echo \${{ github.ref == }}`));
    const { refusal } = await expectRefused(
      ["e2e/intake", "--ref", ref],
      new RegExp(`^error: ${wf}:6:\\d+: invalid expression in jobs\\.a\\.steps\\[0\\]\\.run`),
    );
    expect(refusal.data.code).toBe("WORKFLOW_INVALID");
  });

  it("an action that is not built in", async () => {
    const ref = branchWith(good.replace("run: echo hi", "uses: someone/action@v1"));
    await expectRefused(
      ["e2e/intake", "--ref", ref],
      new RegExp(`^error: ${wf}:6:\\d+: .*"someone/action@v1", which is not a built-in action`),
    );
  });

  it("a needs cycle", async () => {
    const ref = branchWith(`on: push
jobs:
  a:
    runs-on: airlock
    needs: b
    steps:
      - run: echo a
  b:
    runs-on: airlock
    needs: a
    steps:
      - run: echo b
`);
    await expectRefused(
      ["e2e/intake", "--ref", ref],
      new RegExp(`^error: ${wf}:\\d+:\\d+: needs cycle: (a → b → a|b → a → b)`),
    );
  });

  it("a ref that does not exist", async () => {
    const { refusal } = await expectRefused(
      ["e2e/intake", "--ref", "nope"],
      /^error: ref "nope" does not exist/,
    );
    expect(refusal.data).toMatchObject({ ref: "nope", code: "REF_NOT_FOUND" });
  });

  it("an event the workflow does not run on", async () => {
    const { refusal } = await expectRefused(
      ["e2e/intake", "--event", "pull_request"],
      new RegExp(`^error: ${wf} does not run on "pull_request" \\(it runs on: push\\)`),
    );
    expect(refusal.data).toMatchObject({ event: "pull_request", code: "REQUEST_INVALID" });
  });

  it("a push to a branch the workflow's on.push filters exclude", async () => {
    const branch = branchWith(
      good.replace(/^on: push$/m, "on:\n  push:\n    branches: [main, 'release/**']"),
    );
    const { refusal } = await expectRefused(
      ["e2e/intake", "--ref", branch],
      new RegExp(`^error: ${wf} does not run on push to branch ${branch}: its on.push filters exclude it`),
    );
    expect(refusal.data).toMatchObject({ code: "REQUEST_INVALID" });
  });

  it("a repository whose source has gone", async () => {
    const gone = GitRepo.create("gone", { [wf]: good });
    const added = await airlock.cli("repo", "add", "e2e/gone", "--source", gone.dir);
    expect(added.status, added.stderr).toBe(0);
    rmSync(gone.dir, { recursive: true, force: true });
    const { refusal } = await expectRefused(
      ["e2e/gone"],
      new RegExp(`^error: repository source ${gone.dir} cannot be read`),
    );
    expect(refusal.data).toMatchObject({ repo: "e2e/gone", code: "REPO_UNAVAILABLE" });
  });

  it("a repository that is not registered", async () => {
    const { refusal } = await expectRefused(
      ["e2e/unknown"],
      /^error: repository e2e\/unknown is not registered/,
    );
    expect(refusal.data).toMatchObject({ repo: "e2e/unknown", code: "NOT_FOUND" });
  });

  it("left `runs list` as it was", async () => {
    expect(before).toBeDefined();
    expect(await airlock.runs()).toEqual(before?.runs);
  });

  it("still runs the good workflow afterwards", async () => {
    const r = await airlock.cli("run", "e2e/intake");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(await airlock.runs()).toHaveLength(1);
  });
});
