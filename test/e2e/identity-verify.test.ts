import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import jwt from "jsonwebtoken";
import jwkToPem from "jwk-to-pem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Airlock, GitRepo, jobByKey, type RunningCliServer, runIdOf } from "./cli-harness.js";
import { TestHost } from "./net-hosts.js";

/**
 * Independent verification, as a cloud does it: `airlock server` runs a job that obtains an ID
 * token and presents it as a bearer token to a relying party (a server in a namespace this test
 * made, reached through the job's egress allowlist). The test takes the token the relying party
 * received and verifies it with a second JWT implementation (jsonwebtoken + jwk-to-pem), knowing
 * only the issuer URL: discovery document → jwks_uri → key by kid. None of Airlock's verifying
 * code runs. The same token fails for another audience, another issuer, or a changed byte.
 */
let airlock: Airlock;
let repo: GitRepo;
let rp: TestHost;
let server: RunningCliServer | undefined;
let docroot: string;
let issuer: string;
let apiToken: string;

const repoName = "e2e-verify/app";
const audience = "https://rp.test";

const workflow = `on: push
jobs:
  present:
    runs-on: airlock
    permissions:
      id-token: write
    egress:
      allow: [rp.test]
    steps:
      - run: |
          resp=$(curl -fsS --noproxy '*' -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=${audience}")
          token=$(printf %s "$resp" | python3 -c 'import json,sys; print(json.load(sys.stdin)["value"])')
          curl -sS --max-time 20 -o /dev/null -w "relying party said %{http_code}\\n" -H "Authorization: Bearer $token" http://rp.test/session
`;

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const addr = s.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

beforeAll(async () => {
  docroot = mkdtempSync(join(tmpdir(), "airlock-e2e-rp-"));
  writeFileSync(join(docroot, "session"), "{}\n");
  rp = await TestHost.create("idvrp", 51, { http: [{ port: 80, root: docroot }] });
  // The issuer must be the server's own URL, so pick the port before writing the config.
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}`;
  airlock = Airlock.create("identity-verify", {
    config: {
      sandbox: { uidBase: 412_000, uidCount: 64 },
      network: { pool: "10.242.0.0/16", hosts: { "rp.test": [rp.address] } },
      identity: { issuer },
    },
  });
  repo = GitRepo.create("identity-verify", { ".airlock/workflows/ci.yml": workflow });
  const added = await airlock.cli("repo", "add", repoName, "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);
  const issued = await airlock.cli("token", "issue", "--name", "e2e");
  expect(issued.status, issued.stderr).toBe(0);
  apiToken = issued.stdout.trim();
  server = await airlock.startServer(port);
  expect(server.url).toBe(issuer);
}, 120_000);

afterAll(async () => {
  await server?.stop();
  await rp?.destroy();
  airlock?.cleanup();
  repo?.cleanup();
  if (docroot) rmSync(docroot, { recursive: true, force: true });
});

interface Discovery {
  issuer: string;
  jwks_uri: string;
  id_token_signing_alg_values_supported: string[];
  claims_supported: string[];
  response_types_supported: string[];
  subject_types_supported: string[];
}

interface Jwk {
  kid: string;
  kty: string;
  crv: string;
  x: string;
  y: string;
}

/** What a relying party does with nothing but the issuer URL. */
async function relyingPartyVerify(token: string, opts: { audience: string; issuer: string }) {
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as Discovery;
  const { keys } = (await (await fetch(discovery.jwks_uri)).json()) as { keys: Jwk[] };
  const header = jwt.decode(token, { complete: true })?.header;
  const jwk = keys.find((k) => k.kid === header?.kid);
  if (!jwk) throw new Error(`no published key ${header?.kid}`);
  const pem = jwkToPem({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y });
  return jwt.verify(token, pem, {
    algorithms: ["ES256"],
    audience: opts.audience,
    issuer: opts.issuer,
  }) as jwt.JwtPayload;
}

describe("a job's ID token, verified by a relying party that trusts only the issuer URL", () => {
  it("publishes a discovery document a cloud's OIDC federation accepts", async () => {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Discovery;
    expect(doc.issuer).toBe(issuer);
    expect(doc.jwks_uri).toBe(`${issuer}/.well-known/jwks`);
    expect(doc.id_token_signing_alg_values_supported).toContain("ES256");
    expect(doc.response_types_supported).toEqual(["id_token"]);
    expect(doc.subject_types_supported).toContain("public");
    expect(doc.claims_supported).toEqual(
      expect.arrayContaining([
        "sub",
        "aud",
        "iss",
        "exp",
        "repository",
        "ref",
        "ref_protected",
        "environment",
        "event_name",
        "run_id",
        "job_workflow_ref",
        "runner_environment",
      ]),
    );
    const jwks = (await (await fetch(doc.jwks_uri)).json()) as { keys: (Jwk & { d?: string })[] };
    expect(jwks.keys.length).toBeGreaterThan(0);
    for (const k of jwks.keys) {
      expect(k).toMatchObject({ kty: "EC", crv: "P-256" });
      expect(k.d).toBeUndefined(); // public halves only
    }
  });

  it("verifies a token a job presented, with jsonwebtoken and the published JWKS", async () => {
    const env = { AIRLOCK_SERVER: issuer, AIRLOCK_TOKEN: apiToken };
    const r = await airlock.cliWith({ env }, "run", repoName);
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain("relying party said 200");
    const run = await airlock.run(runIdOf(r.stdout));
    const job = jobByKey(run, "present");

    const presented = rp.requests().find((q) => q.kind === "http" && q.path === "/session");
    const token = /^Bearer (\S+)$/.exec(presented?.authorization ?? "")?.[1];
    if (!token) throw new Error(`the relying party got no bearer token: ${JSON.stringify(rp.requests())}`);

    const claims = await relyingPartyVerify(token, { audience, issuer });
    expect(claims).toMatchObject({
      iss: issuer,
      aud: audience,
      sub: `repo:${repoName}:ref:refs/heads/main`,
      repository: repoName,
      ref_protected: "true",
      run_id: run.id,
      runner_environment: "self-hosted",
    });
    expect(jwt.decode(token, { complete: true })?.header).toMatchObject({ alg: "ES256", typ: "JWT" });

    // The same token is worthless to anyone who expects something else, or if one byte changes.
    await expect(relyingPartyVerify(token, { audience: "sts.amazonaws.com", issuer })).rejects.toThrow(
      /audience invalid/,
    );
    await expect(
      relyingPartyVerify(token, { audience, issuer: "https://token.actions.githubusercontent.com" }),
    ).rejects.toThrow(/issuer invalid/);
    const [h, p, s] = token.split(".") as [string, string, string];
    const forged = Buffer.from(
      JSON.stringify({ ...claims, sub: `repo:${repoName}:environment:prod` }),
    ).toString("base64url");
    await expect(relyingPartyVerify(`${h}.${forged}.${s}`, { audience, issuer })).rejects.toThrow(
      /invalid signature/,
    );
    expect(p).not.toBe(forged);

    // The job's own log never showed it, though the server streamed it live.
    expect(r.stdout).not.toContain(token);
    expect(await airlock.logs(job.id)).not.toContain(token);
  });
});
