import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { AuditRecord } from "../../src/audit/events.js";
import type { RunView } from "../../src/controller/views.js";
import { Airlock, type CliResult, GitRepo, jobByKey, runIdOf } from "./cli-harness.js";

/**
 * Who gets which secret, through real jobs:
 *
 * - pull-request code never gets an environment's secret: a PR job declaring one fails at
 *   provisioning (the broker does not even look in an environment the token does not name), and a
 *   PR job that names the environment is denied at admission; the same secret reaches a push from
 *   protected main into that environment.
 * - a job is entitled to exactly its own repository's, its organisation's and its environment's
 *   secrets: another repository's secret is "not found" to it, a user policy can narrow further.
 * - every refusal of the broker, asked from inside a job over the job API (wrong audience, a
 *   garbage token, an audience the broker does not serve, a secret the job did not declare, out of
 *   scope or forbidden by policy, an invalid name, a partly refused request), is a 4xx to the job and a `secret.denied` audit
 *   record with its reason — and the record never holds what the job sent in place of a name.
 *
 * (Another job's token and request token: identity-replay.test.ts.)
 */
let airlock: Airlock;
let repo: GitRepo;
let policyDir: string;
let audit: AuditRecord[];
let pr: { result: CliResult; run: RunView };
let push: { result: CliResult; run: RunView };

const owner = "e2e-scopes";
const repoName = `${owner}/app`;
const otherRepo = `${owner}/other`;
const values = {
  ENV_ONLY: "env-only-value-8c1f",
  REPO_S: "repo-scoped-value-51ab",
  DEPLOY_KEY: "deploy-key-value-e09d",
  OTHER_REPO_SECRET: "other-repo-value-77aa",
};

const userPolicy = `// DEPLOY_KEY only for the release workflow.
@id("deploy-key-release-only")
forbid (principal, action == Airlock::Action::"GetSecret", resource)
when { resource.name == "DEPLOY_KEY" }
unless { context.claims.workflow == "Release" };
`;

// A job proving it holds the value, without printing it: by its SHA-256.
const holds = (name: keyof typeof values) =>
  `python3 -c 'import hashlib,os,sys; print("${name} held:", hashlib.sha256(os.environ["V"].encode()).hexdigest())'`;

const prWorkflow = `name: PR
on: pull_request
jobs:
  pr-env-secret:
    runs-on: airlock
    secrets: [ENV_ONLY]
    steps:
      - env:
          V: \${{ secrets.ENV_ONLY }}
        run: echo "must never run"
  pr-in-env:
    runs-on: airlock
    environment: prod
    secrets: [ENV_ONLY]
    steps:
      - run: echo "must never run"
`;

const probe = `tok() {
  curl -fsS --noproxy '*' -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \\
    "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])'
}
# ex TOKEN BODY: the status and the error code the broker answered (never a value).
ex() {
  code=$(curl -s --noproxy '*' -o /workspace/resp -w '%{http_code}' -X POST -H "Authorization: bearer $1" \\
    -H 'content-type: application/json' -d "$2" "$AIRLOCK_SECRETS_URL")
  echo "$code $(python3 -c 'import json; print(json.load(open("/workspace/resp")).get("code", "-"))')"
}
B=$(tok "$AIRLOCK_SECRETS_AUDIENCE")
echo "cloud-audience: $(ex "$(tok sts.amazonaws.com)" '{"secrets":["REPO_S"]}')"
echo "garbage-token: $(ex not-a-token '{"secrets":["REPO_S"]}')"
echo "other-audience: $(ex "$B" '{"secrets":["REPO_S"],"audience":"https://elsewhere.example"}')"
echo "env-secret-without-env: $(ex "$B" '{"secrets":["ENV_ONLY"]}')"
echo "other-repo-secret: $(ex "$B" '{"secrets":["OTHER_REPO_SECRET"]}')"
echo "invalid-name: $(ex "$B" '{"secrets":["ghp_pasted value"]}')"
echo "policy-forbidden: $(ex "$B" '{"secrets":["DEPLOY_KEY"]}')"
echo "all-or-nothing: $(ex "$B" '{"secrets":["REPO_S","ENV_ONLY"]}')"
echo "entitled: $(ex "$B" '{"secrets":["REPO_S"]}')"`;

const indent = (s: string, n: number) =>
  s
    .split("\n")
    .map((l) => `${" ".repeat(n)}${l}`)
    .join("\n");

const pushWorkflow = `name: Deploy
on: push
jobs:
  deploy:
    runs-on: airlock
    environment: prod
    secrets: [ENV_ONLY]
    steps:
      - env:
          V: \${{ secrets.ENV_ONLY }}
        run: ${holds("ENV_ONLY")}
  no-env:
    runs-on: airlock
    secrets: [ENV_ONLY]
    steps:
      - run: echo "must never run"
  cross-repo:
    runs-on: airlock
    secrets: [OTHER_REPO_SECRET]
    steps:
      - run: echo "must never run"
  narrowed:
    runs-on: airlock
    secrets: [DEPLOY_KEY]
    steps:
      - run: echo "must never run"
  prober:
    runs-on: airlock
    # The job's own exchange is held to what it declares, like provisioning.
    secrets: [REPO_S]
    permissions:
      id-token: write
    steps:
      - run: |
${indent(probe, 10)}
`;

async function runWorkflow(...args: string[]): Promise<{ result: CliResult; run: RunView }> {
  const result = await airlock.cli("run", repoName, ...args);
  if (!/^run run_/m.test(result.stdout))
    throw new Error(`airlock run ${args.join(" ")}: ${result.stdout}${result.stderr}`);
  return { result, run: await airlock.run(runIdOf(result.stdout)) };
}

beforeAll(async () => {
  policyDir = mkdtempSync(join(tmpdir(), "airlock-e2e-policies-"));
  writeFileSync(join(policyDir, "secrets.cedar"), userPolicy);
  airlock = Airlock.create("secrets-scopes", {
    config: {
      sandbox: { uidBase: 418_000, uidCount: 64 },
      network: { pool: "10.245.0.0/16" },
      policyDir,
    },
  });
  repo = GitRepo.create("secrets-scopes", {
    ".airlock/workflows/pr.yml": prWorkflow,
    ".airlock/workflows/deploy.yml": pushWorkflow,
  });
  for (const args of [
    ["repo", "add", repoName, "--source", repo.dir],
    ["repo", "add", otherRepo, "--source", repo.dir],
    ["env", "set", repoName, "prod", "--branch", "main"],
  ]) {
    const r = await airlock.cli(...args);
    expect(r.status, r.stderr).toBe(0);
  }
  const scopes: Record<keyof typeof values, string[]> = {
    ENV_ONLY: ["--repo", repoName, "--env", "prod"],
    REPO_S: ["--repo", repoName],
    DEPLOY_KEY: ["--repo", repoName],
    OTHER_REPO_SECRET: ["--repo", otherRepo],
  };
  for (const [name, value] of Object.entries(values)) {
    const r = await airlock.cliWith(
      { input: value },
      "secret",
      "set",
      name,
      ...scopes[name as keyof typeof values],
    );
    expect(r.status, r.stderr).toBe(0);
  }
  // One embedded controller per data directory at a time: the runs go one after the other.
  pr = await runWorkflow("--event", "pull_request", "--workflow", ".airlock/workflows/pr.yml");
  push = await runWorkflow("--workflow", ".airlock/workflows/deploy.yml");
  audit = await airlock.audit();
}, 180_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
  if (policyDir) rmSync(policyDir, { recursive: true, force: true });
});

function denials(jobId: string): AuditRecord[] {
  return audit.filter((r) => r.type === "secret.denied" && r.jobId === jobId);
}

function jobAddr(jobId: string): string {
  const rec = audit.find((r) => r.type === "job.running" && r.jobId === jobId);
  return String((rec?.data.network as { jobAddr?: string } | undefined)?.jobAddr);
}

describe("environment secrets and pull requests", () => {
  it("a pull-request job declaring an environment secret fails at provisioning, and says why", async () => {
    expect(pr.result.status).not.toBe(0);
    const job = await airlock.job(jobByKey(pr.run, "pr-env-secret").id);
    expect(job.conclusion).toBe("failed");
    expect(job.detail).toMatch(/NOT_FOUND: secret request refused: ENV_ONLY not found/);
    expect(job.steps?.every((s) => s.state === "pending")).toBe(true);
    expect(await airlock.logs(job.id)).not.toContain("must never run");
    const [denied, ...more] = denials(job.id);
    expect(more).toHaveLength(0);
    expect(denied?.data).toMatchObject({
      via: "provision",
      reason: "not_found",
      requested: ["ENV_ONLY"],
      claims: expect.objectContaining({
        event_name: "pull_request",
        ref_protected: "false",
        environment: null,
      }),
      decisions: [{ name: "ENV_ONLY", scope: null, allowed: false, reason: "not_found" }],
    });
  });

  it("a pull-request job naming the environment is denied before anything is provisioned", async () => {
    const job = jobByKey(pr.run, "pr-in-env");
    expect(job.state).toBe("denied");
    // Two built-in forbids decide: PR code never enters an environment, nor does an unprotected ref.
    expect(job.decision?.reasons).toEqual(
      expect.arrayContaining(["pull-request-no-environment", "environment-requires-protected-ref"]),
    );
    expect(denials(job.id)).toHaveLength(0);
    expect(audit.some((r) => r.jobId === job.id && r.type === "secret.granted")).toBe(false);
  });

  it("a push from protected main into the environment gets it", async () => {
    const job = jobByKey(push.run, "deploy");
    expect(job.conclusion).toBe("succeeded");
    const digest = createHash("sha256").update(values.ENV_ONLY).digest("hex");
    expect(await airlock.logs(job.id)).toContain(`ENV_ONLY held: ${digest}`);
    const granted = audit.find((r) => r.type === "secret.granted" && r.jobId === job.id);
    expect(granted?.data).toMatchObject({
      via: "provision",
      claims: expect.objectContaining({ environment: "prod", ref_protected: "true", event_name: "push" }),
      decisions: [
        expect.objectContaining({
          name: "ENV_ONLY",
          scope: `environment:${repoName}:prod`,
          allowed: true,
          policies: ["secret-scope-match"],
        }),
      ],
    });
  });
});

describe("scope and policy at provisioning", () => {
  it("an environment secret is not found for a job outside the environment", async () => {
    const job = await airlock.job(jobByKey(push.run, "no-env").id);
    expect(job.conclusion).toBe("failed");
    expect(job.detail).toMatch(/ENV_ONLY not found/);
    expect(denials(job.id).map((r) => r.data.reason)).toEqual(["not_found"]);
  });

  it("another repository's secret does not exist for this job", async () => {
    const job = await airlock.job(jobByKey(push.run, "cross-repo").id);
    expect(job.conclusion).toBe("failed");
    expect(job.detail).toMatch(/OTHER_REPO_SECRET not found/);
    const [denied] = denials(job.id);
    expect(denied?.data).toMatchObject({ reason: "not_found", requested: ["OTHER_REPO_SECRET"] });
  });

  it("a user policy narrows a repository secret, and the record names the policy", async () => {
    const job = await airlock.job(jobByKey(push.run, "narrowed").id);
    expect(job.conclusion).toBe("failed");
    expect(job.detail).toMatch(
      /POLICY_DENIED: .*DEPLOY_KEY \(repo:e2e-scopes\/app\) denied by policy deploy-key-release-only/,
    );
    const [denied] = denials(job.id);
    expect(denied?.data).toMatchObject({
      reason: "policy",
      decisions: [
        expect.objectContaining({
          name: "DEPLOY_KEY",
          allowed: false,
          reason: "policy",
          policies: ["deploy-key-release-only"],
        }),
      ],
    });
  });
});

describe("the broker, asked from inside a job", () => {
  const expected: [label: string, answer: string, reason: string | null][] = [
    ["cloud-audience", "401 UNAUTHENTICATED", "token_audience"],
    ["garbage-token", "401 UNAUTHENTICATED", "token_malformed"],
    ["other-audience", "401 UNAUTHENTICATED", "audience_not_accepted"],
    // Undeclared names are refused before any lookup: not_found and policy are never reached from
    // inside (provisioning, above, shows those reasons for declared names).
    ["env-secret-without-env", "403 POLICY_DENIED", "not_declared"],
    ["other-repo-secret", "403 POLICY_DENIED", "not_declared"],
    ["invalid-name", "400 REQUEST_INVALID", "request_invalid"],
    ["policy-forbidden", "403 POLICY_DENIED", "not_declared"],
    ["all-or-nothing", "403 POLICY_DENIED", "not_declared"],
    ["entitled", "200 -", null],
  ];

  it("answers each request as it should", async () => {
    const logs = await airlock.logs(jobByKey(push.run, "prober").id);
    for (const [label, answer] of expected) expect(logs).toContain(`${label}: ${answer}`);
  });

  it("audits every refusal with its reason, in order, and grants only the entitled request", async () => {
    const prober = jobByKey(push.run, "prober");
    const ip = jobAddr(prober.id);
    const start =
      audit.find((r) => r.type === "job.running" && r.jobId === prober.id)?.seq ?? Number.POSITIVE_INFINITY;
    const end =
      audit.find((r) => r.type === "job.torn_down" && r.jobId === prober.id)?.seq ?? Number.POSITIVE_INFINITY;
    // A refusal before the token is tied to a job has no job id; the caller's address (reused only
    // after the job is torn down) and the time say whose.
    const fromProber = audit.filter(
      (r) =>
        (r.type === "secret.denied" || r.type === "secret.granted") &&
        r.data.ip === ip &&
        r.seq > start &&
        r.seq < end,
    );
    expect(fromProber.map((r) => (r.type === "secret.granted" ? null : r.data.reason))).toEqual(
      expected.map((e) => e[2]),
    );
    for (const r of fromProber) expect(r.data.via).toBe("exchange");
    const byReason = (reason: string) => fromProber.filter((r) => r.data.reason === reason);
    expect(byReason("request_invalid")[0]?.data.requested).toEqual(["<invalid>"]);
    // All or nothing: REPO_S is declared, but ENV_ONLY is not, so nothing is granted or even looked up.
    expect(byReason("not_declared").map((r) => r.data.undeclared)).toEqual([
      ["ENV_ONLY"],
      ["OTHER_REPO_SECRET"],
      ["DEPLOY_KEY"],
      ["ENV_ONLY"],
    ]);
    for (const r of byReason("not_declared")) expect(r.data.decisions).toBeUndefined();
    const granted = fromProber.filter((r) => r.type === "secret.granted");
    expect(granted).toHaveLength(1);
    expect(granted[0]?.jobId).toBe(prober.id);
    // What the job sent where a name belongs never reaches the audit log; nor does any value.
    const text = JSON.stringify(audit);
    expect(text).not.toContain("ghp_pasted");
    for (const value of Object.values(values)) expect(text).not.toContain(value);
  });
});
