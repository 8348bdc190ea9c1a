import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Airlock, type CliResult, GitRepo, jobByKey, runIdOf } from "./cli-harness.js";

/**
 * OIDC from inside a job, the way a GitHub job does it: curl with ACTIONS_ID_TOKEN_REQUEST_URL and
 * ACTIONS_ID_TOKEN_REQUEST_TOKEN and `&audience=…`. Proves the claims a cloud trust policy reads
 * (sub per ref or environment, aud, repository, ref, ref_protected, event_name,
 * run_id, runner_environment), and that neither the ID token nor the request token — raw or
 * base64 — reaches `airlock logs`, the live `airlock run` stream, the audit log or any byte of the
 * database. Pull-request code never gets the request variables at all: admission denies it.
 */
let airlock: Airlock;
let repo: GitRepo;

const repoName = "e2e-oidc/app";
const jwtPattern = /eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}/;
const requestTokenPattern = /ajr_[A-Za-z0-9_-]{20,}/;

// The job decodes the payload itself (python, no jq in every image) and prints only the claims;
// then it tries to leak both tokens in the clear and in base64 between markers.
const obtainAndLeak = `
resp=$(curl -fsS --noproxy '*' -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=sts.amazonaws.com")
token=$(printf %s "$resp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
printf %s "$token" | python3 -c '
import base64, json, sys
p = sys.stdin.read().split(".")[1]
p += "=" * (-len(p) % 4)
print("CLAIMS " + json.dumps(json.loads(base64.urlsafe_b64decode(p))))
'
echo "TOKENSTART\${token}TOKENEND"
echo "REQSTART\${ACTIONS_ID_TOKEN_REQUEST_TOKEN}REQEND"
echo "B64START$(printf %s "$token" | base64 -w0)B64END"
echo "REQB64START$(printf %s "$ACTIONS_ID_TOKEN_REQUEST_TOKEN" | base64 -w0)REQB64END"
`;

const indent = (s: string, n: number) =>
  s
    .trim()
    .split("\n")
    .map((l) => `${" ".repeat(n)}${l}`)
    .join("\n");

const workflow = (environment?: string) => `name: OIDC
on: [push, pull_request]
jobs:
  oidc:
    runs-on: airlock
    ${environment ? `environment: ${environment}` : ""}
    permissions:
      id-token: write
    steps:
      - name: get an ID token
        run: |
${indent(obtainAndLeak, 10)}
`;

beforeAll(async () => {
  airlock = Airlock.create("identity-oidc", {
    config: {
      sandbox: { uidBase: 410_000, uidCount: 64 },
      network: { pool: "10.241.0.0/16" },
    },
  });
  repo = GitRepo.create("identity-oidc", {
    ".airlock/workflows/oidc.yml": workflow(),
    ".airlock/workflows/deploy.yml": workflow("prod").replace("name: OIDC", "name: Deploy"),
  });
  for (const args of [
    ["repo", "add", repoName, "--source", repo.dir],
    // No approvals: the environment is gated by its ref rule only.
    ["env", "set", repoName, "prod", "--branch", "main"],
  ]) {
    const r = await airlock.cli(...args);
    expect(r.status, r.stderr).toBe(0);
  }
}, 120_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

function claimsOf(text: string): Record<string, unknown> {
  const line = text.split("\n").find((l) => l.includes("CLAIMS {"));
  if (!line) throw new Error(`no CLAIMS line in:\n${text}`);
  return JSON.parse(line.slice(line.indexOf("{"))) as Record<string, unknown>;
}

/** Both tokens were printed; every place a person or process can read them shows only `***`. */
async function expectNoTokenAnywhere(result: CliResult, jobId: string): Promise<void> {
  const logs = await airlock.logs(jobId);
  for (const text of [logs, result.stdout]) {
    expect(text).toContain("TOKENSTART***TOKENEND");
    expect(text).toContain("REQSTART***REQEND");
    // Base64 is masked over its stable inner part; the whole encoding never survives.
    expect(text).toMatch(/B64START[A-Za-z0-9+/=]{0,4}\*\*\*[A-Za-z0-9+/=]{0,4}B64END/);
    expect(text).toMatch(/REQB64START[A-Za-z0-9+/=]{0,4}\*\*\*[A-Za-z0-9+/=]{0,4}REQB64END/);
    expect(text).not.toMatch(jwtPattern);
    expect(text).not.toMatch(requestTokenPattern);
  }
  const chunks = airlock
    .query<{ data: string }>("SELECT data FROM log_chunks WHERE job_id = ?", jobId)
    .map((c) => c.data)
    .join("");
  expect(chunks).toContain("TOKENSTART***TOKENEND");
  expect(chunks).not.toMatch(jwtPattern);
  // Nothing in the store at all: request tokens are kept as hashes, ID tokens by jti only.
  const db = airlock.databaseBytes().toString("latin1");
  expect(db).not.toMatch(jwtPattern);
  expect(db).not.toMatch(requestTokenPattern);
  const audit = JSON.stringify(await airlock.audit({ job: jobId }));
  expect(audit).not.toMatch(jwtPattern);
  expect(audit).not.toMatch(requestTokenPattern);
}

describe("an ID token requested from inside a job", () => {
  it("carries GitHub's claims for a push to a protected branch, and never shows in logs or the store", async () => {
    const r = await airlock.cli("run", repoName, "--workflow", ".airlock/workflows/oidc.yml");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const run = await airlock.run(runIdOf(r.stdout));
    const job = jobByKey(run, "oidc");
    const claims = claimsOf(await airlock.logs(job.id));
    expect(claims).toMatchObject({
      iss: "http://127.0.0.1:8480",
      aud: "sts.amazonaws.com",
      sub: `repo:${repoName}:ref:refs/heads/main`,
      repository: repoName,
      repository_owner: "e2e-oidc",
      ref: "refs/heads/main",
      ref_type: "branch",
      ref_protected: "true",
      event_name: "push",
      run_id: run.id,
      run_number: String(run.runNumber),
      runner_environment: "self-hosted",
      workflow: "OIDC",
      workflow_ref: `${repoName}/.airlock/workflows/oidc.yml@refs/heads/main`,
      sha: run.sha,
    });
    expect(claims).not.toHaveProperty("environment");
    expect(Number(claims.exp) - Number(claims.iat)).toBe(300);
    // The issue is audited against the job, by jti, without the token.
    const issued = await airlock.audit({ job: job.id, type: "identity.token_issued" });
    expect(issued.map((e) => e.data)).toContainEqual(
      expect.objectContaining({ jti: claims.jti, aud: "sts.amazonaws.com", sub: claims.sub }),
    );
    await expectNoTokenAnywhere(r, job.id);
  });

  it("names the environment in sub for an environment job on a protected branch", async () => {
    const r = await airlock.cli("run", repoName, "--workflow", ".airlock/workflows/deploy.yml");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const run = await airlock.run(runIdOf(r.stdout));
    const job = jobByKey(run, "oidc");
    const claims = claimsOf(await airlock.logs(job.id));
    expect(claims).toMatchObject({
      sub: `repo:${repoName}:environment:prod`,
      environment: "prod",
      ref_protected: "true",
      workflow: "Deploy",
    });
    await expectNoTokenAnywhere(r, job.id);
  });

  it("is never handed to pull-request code: id-token: write on pull_request is denied at admission", async () => {
    const r = await airlock.cli(
      "run",
      repoName,
      "--event",
      "pull_request",
      "--workflow",
      ".airlock/workflows/oidc.yml",
    );
    expect(r.status).not.toBe(0);
    const job = jobByKey(await airlock.run(runIdOf(r.stdout)), "oidc");
    expect(job.state).toBe("denied");
    expect(job.decision?.reasons).toEqual(["pull-request-no-deploy"]);
    expect(job.runnerId).toBeNull();
    // Nothing was provisioned for it: no request token, no ID token.
    const minted = await airlock.audit({ job: job.id });
    expect(minted.map((e) => e.type)).not.toContain("identity.request_token_issued");
    expect(minted.map((e) => e.type)).not.toContain("identity.token_issued");
  });

  it("follows the repository's subject customization, and still issues tokens after a key rotation", async () => {
    const set = await airlock.cli(
      "repo",
      "oidc-subject",
      repoName,
      "--claims",
      "repository_owner,context,job_workflow_ref",
    );
    expect(set.status, set.stderr).toBe(0);
    const rotated = await airlock.cli("keys", "rotate");
    expect(rotated.status, rotated.stderr).toBe(0);
    expect(rotated.stdout).toMatch(/signing with \S+; retired \S+/);
    try {
      const r = await airlock.cli("run", repoName, "--workflow", ".airlock/workflows/oidc.yml");
      expect(r.status, r.stdout + r.stderr).toBe(0);
      const job = jobByKey(await airlock.run(runIdOf(r.stdout)), "oidc");
      expect(claimsOf(await airlock.logs(job.id)).sub).toBe(
        `repository_owner:e2e-oidc:ref:refs/heads/main:job_workflow_ref:${repoName}/.airlock/workflows/oidc.yml@refs/heads/main`,
      );
    } finally {
      expect((await airlock.cli("repo", "oidc-subject", repoName, "--reset")).status).toBe(0);
    }
  });
});
