import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { caught } from "../../test/fixtures/errors.js";
import { listAudit } from "../audit/log.js";
import { verifyAudit } from "../audit/verify.js";
import type { KeyEncryptionKey } from "../identity/master-key.js";
import type { Db } from "../store/database.js";
import { type BrokerDeps, exchange } from "./broker.js";
import { getLease, isLeaseValid, listJobLeases, revokeJobLeases, revokeLease } from "./leases.js";
import { pickStepSecrets, resolveJobSecrets } from "./resolve-at-provision.js";
import { setSecret } from "./store.js";

import { brokerAudience, dumpDatabase, engineWith, openSecretsDb, TestIssuer, testKek } from "./testing.js";

const VALUES = {
  orgShared: "org-shared-value-0001",
  repoShared: "repo-shared-value-0002",
  envShared: "env-shared-value-0003",
  npm: "npm_tok-value-0004",
  deploy: "deploy-key-value-0005",
  staging: "staging-key-value-0006",
  apiOnly: "api-only-value-0007",
};

describe("secret broker", () => {
  let db: Db;
  let kek: KeyEncryptionKey;
  let issuer: TestIssuer;
  let deps: BrokerDeps;
  const tokens: string[] = [];

  beforeEach(async () => {
    db = await openSecretsDb();
    kek = testKek();
    issuer = await TestIssuer.create();
    deps = issuer.deps(db, kek);
    const set = (scope: Parameters<typeof setSecret>[2]["scope"], name: string, value: string) =>
      setSecret(db, kek, { scope, name, value }, "admin", { clock: issuer.clock });
    await set({ kind: "org", org: "acme" }, "SHARED", VALUES.orgShared);
    await set({ kind: "repo", repo: "acme/web" }, "SHARED", VALUES.repoShared);
    await set(
      { kind: "environment", repo: "acme/web", environment: "production" },
      "SHARED",
      VALUES.envShared,
    );
    await set({ kind: "repo", repo: "acme/web" }, "NPM_TOKEN", VALUES.npm);
    await set(
      { kind: "environment", repo: "acme/web", environment: "production" },
      "DEPLOY_KEY",
      VALUES.deploy,
    );
    await set(
      { kind: "environment", repo: "acme/web", environment: "staging" },
      "STAGING_KEY",
      VALUES.staging,
    );
    await set({ kind: "repo", repo: "acme/api" }, "API_ONLY", VALUES.apiOnly);
  });

  afterEach(async () => {
    // Whatever each test did, the log must hold no value and no token, and still verify.
    const audit = JSON.stringify(await listAudit(db));
    for (const v of Object.values(VALUES)) expect(audit).not.toContain(v);
    for (const t of tokens) {
      expect(audit).not.toContain(t);
      for (const part of t.split(".")) expect(audit).not.toContain(part);
    }
    tokens.length = 0;
    expect((await verifyAudit(db)).ok).toBe(true);
    await db.destroy();
  });

  const mint = async (...args: Parameters<TestIssuer["mint"]>) => {
    const m = await issuer.mint(...args);
    tokens.push(m.token);
    return m;
  };
  const denials = async () => (await listAudit(db, { type: "secret.denied" })).map((a) => a.data);

  it("grants a lease with the values, audited with the deciding claims and policies", async () => {
    const { token, payload } = await mint("job_a");
    const grant = await exchange(deps, { token, secrets: ["NPM_TOKEN", "shared"] });
    expect(grant.secrets).toEqual({ NPM_TOKEN: VALUES.npm, SHARED: VALUES.repoShared });
    expect(grant.scopes).toEqual({
      NPM_TOKEN: { kind: "repo", repo: "acme/web" },
      SHARED: { kind: "repo", repo: "acme/web" },
    });
    expect(grant).toMatchObject({ jobId: "job_a", runId: "run_test" });
    expect(grant.leaseId).toMatch(/^lse_[a-z2-7]{16}$/);
    // Default TTL: 10 minutes.
    expect(Date.parse(grant.expiresAt) - Date.parse(grant.issuedAt)).toBe(600_000);

    const [granted] = await listAudit(db, { type: "secret.granted" });
    expect(granted).toMatchObject({ actor: "job_a", jobId: "job_a", runId: "run_test" });
    expect(granted?.data).toMatchObject({
      via: "exchange",
      leaseId: grant.leaseId,
      claims: {
        repository: "acme/web",
        ref: "refs/heads/main",
        ref_protected: "true",
        environment: null,
        event_name: "push",
        sub: "repo:acme/web:ref:refs/heads/main",
        jti: payload.jti,
      },
      decisions: [
        {
          name: "NPM_TOKEN",
          scope: "repo:acme/web",
          version: 1,
          allowed: true,
          policies: ["secret-scope-match"],
        },
        {
          name: "SHARED",
          scope: "repo:acme/web",
          version: 1,
          allowed: true,
          policies: ["secret-scope-match"],
        },
      ],
    });
    // The lease row holds names, not values.
    const row = await db.selectFrom("secret_leases").selectAll().executeTakeFirstOrThrow();
    expect(JSON.parse(row.names)).toEqual([
      { name: "NPM_TOKEN", scope: "repo:acme/web" },
      { name: "SHARED", scope: "repo:acme/web" },
    ]);
    const dump = await dumpDatabase(db);
    for (const v of Object.values(VALUES)) expect(dump).not.toContain(v);
  });

  it("resolves environment over repository over organisation", async () => {
    const env = await mint("job_env", { environment: "production" });
    expect((await exchange(deps, { token: env.token, secrets: ["SHARED"] })).secrets.SHARED).toBe(
      VALUES.envShared,
    );
    const plain = await mint("job_repo");
    expect((await exchange(deps, { token: plain.token, secrets: ["SHARED"] })).secrets.SHARED).toBe(
      VALUES.repoShared,
    );
    const other = await mint("job_org", { repo: "acme/cli" });
    const g = await exchange(deps, { token: other.token, secrets: ["SHARED"] });
    expect(g.secrets.SHARED).toBe(VALUES.orgShared);
    expect(g.scopes.SHARED).toEqual({ kind: "org", org: "acme" });
  });

  it("never gives a pull_request job an environment secret, and audits why", async () => {
    // Admission forbids a PR job with an environment; the broker holds even if a token says so.
    const { token } = await mint("job_pr", { event: "pull_request", environment: "production" });
    const e = await caught(exchange(deps, { token, secrets: ["DEPLOY_KEY"] }));
    expect(e.code).toBe("POLICY_DENIED");
    expect(e.message).toContain("DEPLOY_KEY");
    expect(e.message).toContain("pull-request-no-environment-secrets");
    expect(e.message).not.toContain(VALUES.deploy);
    const [d] = await denials();
    expect(d).toMatchObject({
      reason: "policy",
      requested: ["DEPLOY_KEY"],
      claims: { event_name: "pull_request", environment: "production", repository: "acme/web" },
      decisions: [{ name: "DEPLOY_KEY", scope: "environment:acme/web:production", allowed: false }],
    });
    const policies = ((d?.decisions ?? []) as { policies: string[] }[])[0]?.policies;
    expect(policies).toContain("pull-request-no-environment-secrets");
    expect(await listJobLeases(db, "job_pr")).toEqual([]);
    // The same job still gets repository secrets.
    const ok = await exchange(deps, { token, secrets: ["NPM_TOKEN"] });
    expect(ok.secrets.NPM_TOKEN).toBe(VALUES.npm);
  });

  it("does not give environment A's token environment B's secret", async () => {
    const { token } = await mint("job_prod", { environment: "production" });
    const e = await caught(exchange(deps, { token, secrets: ["STAGING_KEY"] }));
    expect(e.code).toBe("NOT_FOUND");
    expect(e.message).toContain("STAGING_KEY not found");
    expect(e.hint).toContain("environment:acme/web:production");
    expect((await denials())[0]).toMatchObject({ reason: "not_found" });
    // Without an environment claim, no environment secret is even looked up.
    const plain = await mint("job_plain");
    expect((await caught(exchange(deps, { token: plain.token, secrets: ["DEPLOY_KEY"] }))).code).toBe(
      "NOT_FOUND",
    );
  });

  it("does not give one repository's job another repository's secret", async () => {
    const { token } = await mint("job_web");
    expect((await caught(exchange(deps, { token, secrets: ["API_ONLY"] }))).code).toBe("NOT_FOUND");
  });

  it("is all or nothing, naming each refused secret", async () => {
    const { token } = await mint("job_a", { event: "pull_request", environment: "production" });
    const e = await caught(exchange(deps, { token, secrets: ["NPM_TOKEN", "DEPLOY_KEY", "MISSING"] }));
    expect(e.code).toBe("POLICY_DENIED");
    expect(e.message).toMatch(/DEPLOY_KEY .*denied by policy/);
    expect(e.message).toContain("MISSING not found");
    expect(e.message).not.toContain("NPM_TOKEN");
    expect(e.details).toMatchObject({
      refused: [
        { name: "DEPLOY_KEY", reason: "policy" },
        { name: "MISSING", reason: "not_found" },
      ],
    });
    expect(await listJobLeases(db, "job_a")).toEqual([]);
    expect(await listAudit(db, { type: "secret.granted" })).toEqual([]);
  });

  it("refuses a token whose job has ended", async () => {
    const { token } = await mint("job_done");
    await exchange(deps, { token, secrets: ["NPM_TOKEN"] });
    issuer.jobs.set("job_done", { live: false });
    const e = await caught(exchange(deps, { token, secrets: ["NPM_TOKEN"] }));
    expect(e.code).toBe("UNAUTHENTICATED");
    expect((await denials())[0]).toMatchObject({ reason: "job_ended", claims: { repository: "acme/web" } });
    // A job past its hard end counts as ended even if not yet reaped.
    const late = await mint("job_late");
    issuer.jobs.set("job_late", { live: true, endsAt: issuer.clock.now() });
    expect((await caught(exchange(deps, { token: late.token, secrets: ["NPM_TOKEN"] }))).code).toBe(
      "UNAUTHENTICATED",
    );
  });

  it("refuses a revoked, expired, foreign-audience, forged or unknown token, auditing each reason", async () => {
    const revoked = await mint("job_r");
    issuer.revoked.add(revoked.payload.jti);
    const expired = await mint("job_e", {}, { lifetimeSeconds: 60 });
    const foreign = await mint("job_f", {}, { audience: "sts.amazonaws.com" });
    const good = await mint("job_g");
    const [h, p, s] = good.token.split(".") as [string, string, string];
    const forgedPayload = Buffer.from(
      JSON.stringify({ ...good.payload, repository: "acme/api", repository_owner: "acme" }),
    ).toString("base64url");
    const forged = `${h}.${forgedPayload}.${s}`;
    tokens.push(forged);
    const unknown = await mint("job_u");
    issuer.tokenJobs.delete(unknown.payload.jti);

    issuer.clock.advance(120);
    const attempts: [string, string][] = [
      [revoked.token, "token_revoked"],
      [expired.token, "token_expired"],
      [foreign.token, "token_audience"],
      [forged, "token_signature"],
      ["not-a-jwt", "token_malformed"],
      [unknown.token, "token_unknown"],
    ];
    for (const [token] of attempts) {
      expect((await caught(exchange(deps, { token, secrets: ["NPM_TOKEN"] }))).code).toBe("UNAUTHENTICATED");
    }
    expect((await denials()).map((d) => d.reason)).toEqual(attempts.map(([, r]) => r));
    // A request may narrow to an accepted audience, never name another one.
    const e = await caught(
      exchange(deps, { token: foreign.token, secrets: ["NPM_TOKEN"], audience: "sts.amazonaws.com" }),
    );
    expect(e.code).toBe("UNAUTHENTICATED");
    expect((await denials()).at(-1)).toMatchObject({ reason: "audience_not_accepted" });
    expect(p).toBeTruthy();
  });

  it("refuses malformed requests, auditing them without echoing the input", async () => {
    const { token } = await mint("job_a");
    const pasted = "ghp-pasted/Value+Where=A-Name-Belongs";
    const e = await caught(exchange(deps, { token, secrets: ["NPM_TOKEN", pasted] }));
    expect(e.code).toBe("REQUEST_INVALID");
    expect(e.message).toContain("#2");
    expect(e.message).not.toContain(pasted);
    expect((await caught(exchange(deps, { token, secrets: [] }))).code).toBe("REQUEST_INVALID");
    const [first] = await denials();
    expect(first).toMatchObject({ reason: "request_invalid", requested: ["NPM_TOKEN", "<invalid>"] });
    expect(JSON.stringify(await listAudit(db))).not.toContain(pasted);
  });

  it("caps the lease at the job's end and lets it expire on a frozen clock", async () => {
    const { token } = await mint("job_a");
    const endsAt = new Date(issuer.clock.now().getTime() + 120_000);
    issuer.jobs.set("job_a", { live: true, endsAt });
    const grant = await exchange(deps, { token, secrets: ["NPM_TOKEN"] });
    expect(grant.expiresAt).toBe(endsAt.toISOString());
    const clock = issuer.clock;
    expect(await isLeaseValid(db, grant.leaseId, { clock })).toBe(true);
    clock.advance(119);
    expect(await isLeaseValid(db, grant.leaseId, { clock })).toBe(true);
    clock.advance(1);
    expect(await isLeaseValid(db, grant.leaseId, { clock })).toBe(false);
  });

  it("expires an uncapped lease after the default 10 minutes", async () => {
    const { token } = await mint("job_a");
    const grant = await exchange(deps, { token, secrets: ["NPM_TOKEN"] });
    const clock = issuer.clock;
    clock.advance(599);
    expect(await isLeaseValid(db, grant.leaseId, { clock })).toBe(true);
    clock.advance(1);
    expect(await isLeaseValid(db, grant.leaseId, { clock })).toBe(false);
  });

  it("revokes one lease or all of a job's, audited; a job cannot use another job's lease", async () => {
    const a = await mint("job_a");
    const b = await mint("job_b");
    const clock = issuer.clock;
    const a1 = await exchange(deps, { token: a.token, secrets: ["NPM_TOKEN"] });
    const a2 = await exchange(deps, { token: a.token, secrets: ["SHARED"] });
    const b1 = await exchange(deps, { token: b.token, secrets: ["NPM_TOKEN"] });
    expect(await isLeaseValid(db, a1.leaseId, { jobId: "job_a", clock })).toBe(true);
    expect(await isLeaseValid(db, a1.leaseId, { jobId: "job_b", clock })).toBe(false);
    expect(await isLeaseValid(db, "lse_doesnotexist0000", { clock })).toBe(false);

    expect(await revokeLease(db, a1.leaseId, { actor: "alice", reason: "leaked", clock })).toBe(true);
    expect(await revokeLease(db, a1.leaseId, { actor: "alice", clock })).toBe(false);
    expect(await isLeaseValid(db, a1.leaseId, { clock })).toBe(false);
    expect(await isLeaseValid(db, a2.leaseId, { clock })).toBe(true);

    // Teardown: the job's remaining leases go; the other job's stay.
    expect(await revokeJobLeases(db, "job_a", { actor: "system", clock })).toBe(1);
    expect(await revokeJobLeases(db, "job_a", { actor: "system", clock })).toBe(0);
    expect(await isLeaseValid(db, a2.leaseId, { clock })).toBe(false);
    expect(await isLeaseValid(db, b1.leaseId, { clock })).toBe(true);
    expect((await getLease(db, a2.leaseId))?.revokedAt).toBe(clock.now().toISOString());

    const revocations = await listAudit(db, { type: "secret.lease_revoked" });
    expect(revocations.map((r) => [r.jobId, r.data])).toEqual([
      ["job_a", { leaseIds: [a1.leaseId], reason: "leaked" }],
      ["job_a", { leaseIds: [a2.leaseId], reason: "job ended" }],
    ]);
  });

  it("applies a user policy restricting a secret to protected refs", async () => {
    await setSecret(
      db,
      kek,
      { scope: { kind: "repo", repo: "acme/web" }, name: "RELEASE_KEY", value: "release-value-0008" },
      "admin",
    );
    const policy = engineWith({
      file: "secrets.cedar",
      text: `@id("release-key-protected-refs-only")
forbid (principal, action == Airlock::Action::"GetSecret", resource)
when { resource.name == "RELEASE_KEY" && context.claims.ref_protected != "true" };`,
    });
    const strict = { ...deps, policy };
    const feature = await mint("job_feature", { ref: "refs/heads/feature/x", refProtected: false });
    const e = await caught(exchange(strict, { token: feature.token, secrets: ["RELEASE_KEY"] }));
    expect(e.code).toBe("POLICY_DENIED");
    expect(e.message).toContain("release-key-protected-refs-only");
    expect((await denials())[0]).toMatchObject({
      reason: "policy",
      claims: { ref: "refs/heads/feature/x", ref_protected: "false" },
    });
    // Other secrets are unaffected on that ref; the protected ref gets the key.
    expect((await exchange(strict, { token: feature.token, secrets: ["NPM_TOKEN"] })).secrets.NPM_TOKEN).toBe(
      VALUES.npm,
    );
    const main = await mint("job_main");
    expect(
      (await exchange(strict, { token: main.token, secrets: ["RELEASE_KEY"] })).secrets.RELEASE_KEY,
    ).toBe("release-value-0008");
    expect(JSON.stringify(await listAudit(db))).not.toContain("release-value-0008");
  });

  it("audits a value that fails to open as a denial, granting nothing", async () => {
    await db
      .updateTable("secrets")
      .set({ value: '{"v":1,"kek":"x","dek":"","iv":"","ct":"","tag":""}' })
      .where("name", "=", "NPM_TOKEN")
      .execute();
    const { token } = await mint("job_a");
    expect((await caught(exchange(deps, { token, secrets: ["NPM_TOKEN"] }))).code).toBe("STORE_FAILED");
    expect((await denials())[0]).toMatchObject({ reason: "store_failed" });
    expect(await listJobLeases(db, "job_a")).toEqual([]);
  });
});

describe("resolving a job's declared secrets at provisioning", () => {
  let db: Db;
  let kek: KeyEncryptionKey;
  let issuer: TestIssuer;
  beforeEach(async () => {
    db = await openSecretsDb();
    kek = testKek();
    issuer = await TestIssuer.create();
    await setSecret(
      db,
      kek,
      { scope: { kind: "repo", repo: "acme/web" }, name: "NPM_TOKEN", value: "npm-value-123" },
      "a",
    );
    await setSecret(
      db,
      kek,
      { scope: { kind: "org", org: "acme" }, name: "SLACK_HOOK", value: "slack-value-456" },
      "a",
    );
  });
  afterEach(async () => db.destroy());

  it("goes through the broker, leases, and hands each step only what it references", async () => {
    const { token } = await issuer.mint("job_p");
    const deps = issuer.deps(db, kek);
    const r = await resolveJobSecrets(deps, { jobId: "job_p", token, names: ["npm_token", "SLACK_HOOK"] });
    expect(r.grant?.leaseId).toMatch(/^lse_/);
    expect([...r.values]).toEqual([
      ["NPM_TOKEN", "npm-value-123"],
      ["SLACK_HOOK", "slack-value-456"],
    ]);
    expect(pickStepSecrets(r.values, ["NPM_TOKEN"])).toEqual({ NPM_TOKEN: "npm-value-123" });
    expect(pickStepSecrets(r.values, [])).toEqual({});
    expect(() => pickStepSecrets(r.values, ["OTHER_TOKEN"])).toThrow(/does not declare/);
    const [granted] = await listAudit(db, { type: "secret.granted" });
    expect(granted?.data).toMatchObject({ via: "provision" });
  });

  it("exchanges nothing when the job declares no secrets", async () => {
    const r = await resolveJobSecrets(issuer.deps(db, kek), { jobId: "job_p", token: "unused", names: [] });
    expect(r).toEqual({ grant: null, values: new Map() });
    expect(await listAudit(db)).toHaveLength(2);
  });

  it("refuses another job's token", async () => {
    const other = await issuer.mint("job_other");
    const e = await caught(
      resolveJobSecrets(issuer.deps(db, kek), { jobId: "job_p", token: other.token, names: ["NPM_TOKEN"] }),
    );
    expect(e.code).toBe("FORBIDDEN");
    const [d] = await listAudit(db, { type: "secret.denied" });
    expect(d).toMatchObject({ jobId: "job_p", data: { reason: "token_other_job", tokenJobId: "job_other" } });
  });

  it("accepts an explicitly named accepted audience", async () => {
    const { token } = await issuer.mint("job_p");
    const r = await resolveJobSecrets(issuer.deps(db, kek), {
      jobId: "job_p",
      token,
      names: ["NPM_TOKEN"],
      audience: brokerAudience,
    });
    expect(r.values.get("NPM_TOKEN")).toBe("npm-value-123");
  });
});
