import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listAudit } from "../audit/log.js";
import { verifyAudit } from "../audit/verify.js";
import type { Db } from "../store/database.js";
import type { JobClaimsInput } from "./claims.js";
import { checkIdToken, issueIdTokenForJob, parseBearer, revokeIdToken } from "./issuer.js";
import {
  checkRequestToken,
  idTokenRequestUrl,
  issueRequestToken,
  jobIdentityEnv,
  revokeJobTokens,
} from "./request-token.js";
import { SigningKeys } from "./signing-keys.js";
import { type FrozenClock, frozenClock, identityDb, pushInput, testKek } from "./test-support.js";

const issuer = "https://airlock.example.test";
const jobId = "job_aaaaaaaaaaaaaaaa";
let db: Db;
let clock: FrozenClock;
let keys: SigningKeys;

beforeEach(async () => {
  db = await identityDb();
  clock = frozenClock();
  keys = new SigningKeys(db, { kek: testKek(), clock });
  await keys.ensureActive();
});
afterEach(async () => {
  await db.destroy();
});

const deps = () => ({
  db,
  keys,
  issuer,
  clock,
  claimsFor: async (_jobId: string): Promise<{ input: JobClaimsInput }> => ({
    input: pushInput({ environment: "prod" }),
  }),
});

describe("request tokens", () => {
  it("lifecycle: issued, accepted, revoked at teardown, then refused; never stored in the clear", async () => {
    const issued = await issueRequestToken(db, jobId, { clock });
    expect(issued.token).toMatch(/^ajr_[A-Za-z0-9_-]{43}$/);
    expect(await checkRequestToken(db, issued.token, { clock })).toEqual({ ok: true, jobId });

    const stored = JSON.stringify(await db.selectFrom("audit_events").selectAll().execute());
    expect(stored).not.toContain(issued.token);
    const rows = await db.selectFrom("job_request_tokens").selectAll().execute();
    expect(JSON.stringify(rows)).not.toContain(issued.token.slice(4));

    expect(await revokeJobTokens(db, jobId, { clock })).toEqual({ requestTokens: 1, idTokens: 0 });
    expect(await revokeJobTokens(db, jobId, { clock })).toEqual({ requestTokens: 0, idTokens: 0 });
    expect(await checkRequestToken(db, issued.token, { clock, context: { ip: "10.0.0.2" } })).toEqual({
      ok: false,
      reason: "revoked",
      jobId,
    });
    const denied = await listAudit(db, { type: "identity.request_token_denied" });
    expect(denied.map((d) => d.data)).toEqual([{ ip: "10.0.0.2", reason: "revoked" }]);
    expect(JSON.stringify(denied)).not.toContain(issued.token);
    expect((await listAudit(db, { type: "identity.job_tokens_revoked" }))[0]?.jobId).toBe(jobId);
  });

  it("expires as a backstop if teardown never ran", async () => {
    const issued = await issueRequestToken(db, jobId, { clock, ttlSeconds: 60 });
    clock.advance(60);
    expect(await checkRequestToken(db, issued.token, { clock })).toMatchObject({
      ok: false,
      reason: "expired",
    });
  });

  it("refuses malformed and unknown tokens, auditing each", async () => {
    expect(await checkRequestToken(db, "hello", { clock })).toEqual({ ok: false, reason: "malformed" });
    expect(await checkRequestToken(db, `ajr_${"A".repeat(43)}`, { clock })).toEqual({
      ok: false,
      reason: "unknown",
    });
    const reasons = (await listAudit(db, { type: "identity.request_token_denied" })).map(
      (r) => r.data.reason,
    );
    expect(reasons).toEqual(["malformed", "unknown"]);
  });

  it("gives the job GitHub's variable names, with a URL clients can append &audience= to", async () => {
    const issued = await issueRequestToken(db, jobId, { clock });
    const env = jobIdentityEnv("http://10.200.0.1:8080/", issued);
    expect(env).toEqual({
      ACTIONS_ID_TOKEN_REQUEST_URL: "http://10.200.0.1:8080/api/v1/identity/token?api-version=2.0",
      ACTIONS_ID_TOKEN_REQUEST_TOKEN: issued.token,
    });
    const url = new URL(
      `${idTokenRequestUrl("http://h")}&audience=${encodeURIComponent("sts.amazonaws.com")}`,
    );
    expect(url.searchParams.get("audience")).toBe("sts.amazonaws.com");
    expect(parseBearer(`bearer ${issued.token}`)).toBe(issued.token);
    expect(parseBearer(`Bearer ${issued.token}`)).toBe(issued.token);
    expect(parseBearer("Basic abc")).toBe("");
  });
});

describe("ID tokens for a job", () => {
  it("issues for the job behind the request token, records and audits it", async () => {
    const { token: requestToken } = await issueRequestToken(db, jobId, { clock });
    const minted = await issueIdTokenForJob(deps(), { requestToken, audience: "sts.amazonaws.com" });
    expect(minted.payload).toMatchObject({
      aud: "sts.amazonaws.com",
      sub: "repo:octo-org/octo-repo:environment:prod",
    });
    const issued = await listAudit(db, { type: "identity.token_issued" });
    expect(issued[0]).toMatchObject({ jobId, data: { jti: minted.payload.jti, aud: "sts.amazonaws.com" } });
    expect(JSON.stringify(issued)).not.toContain(minted.token);
    const v = await checkIdToken({ db, issuer, keys, clock }, minted.token, "sts.amazonaws.com");
    expect(v.ok).toBe(true);
  });

  it("defaults the audience to the owner's URL under the issuer, as GitHub does", async () => {
    const { token: requestToken } = await issueRequestToken(db, jobId, { clock });
    const minted = await issueIdTokenForJob(deps(), { requestToken });
    expect(minted.payload.aud).toBe(`${issuer}/octo-org`);
  });

  it("refuses a bad request token with a generic error, audited", async () => {
    await expect(issueIdTokenForJob(deps(), { requestToken: "ajr_nope" })).rejects.toMatchObject({
      code: "UNAUTHENTICATED",
    });
    expect(await listAudit(db, { type: "identity.request_token_denied" })).toHaveLength(1);
  });

  it("refuses a bad audience, audited", async () => {
    const { token: requestToken } = await issueRequestToken(db, jobId, { clock });
    await expect(issueIdTokenForJob(deps(), { requestToken, audience: "has space" })).rejects.toMatchObject({
      code: "REQUEST_INVALID",
    });
    expect((await listAudit(db, { type: "identity.token_request_denied" }))[0]?.data).toMatchObject({
      reason: "audience_invalid",
    });
  });

  it("a token replayed after its job ended is rejected, and the denial says why", async () => {
    const { token: requestToken } = await issueRequestToken(db, jobId, { clock });
    const minted = await issueIdTokenForJob(deps(), { requestToken, audience: "vault" });
    await revokeJobTokens(db, jobId, { clock });
    const v = await checkIdToken({ db, issuer, keys, clock }, minted.token, "vault", {
      route: "secrets.exchange",
    });
    expect(v).toMatchObject({ ok: false, reason: "revoked", jti: minted.payload.jti });
    // The request token is dead too: no new ID tokens for an ended job.
    await expect(issueIdTokenForJob(deps(), { requestToken, audience: "vault" })).rejects.toMatchObject({
      code: "UNAUTHENTICATED",
    });
    const rejected = await listAudit(db, { type: "identity.token_rejected" });
    expect(rejected[0]?.data).toMatchObject({
      reason: "revoked",
      jti: minted.payload.jti,
      route: "secrets.exchange",
    });
  });

  it("a token replayed after revocation is rejected", async () => {
    const { token: requestToken } = await issueRequestToken(db, jobId, { clock });
    const minted = await issueIdTokenForJob(deps(), { requestToken, audience: "vault" });
    expect(await revokeIdToken(db, minted.payload.jti, { actor: "usr_admin", clock })).toBe(true);
    expect(await revokeIdToken(db, minted.payload.jti, { actor: "usr_admin", clock })).toBe(false);
    expect(await checkIdToken({ db, issuer, keys, clock }, minted.token, "vault")).toMatchObject({
      reason: "revoked",
    });
  });

  it("a validly signed token Airlock never recorded is not honoured by Airlock", async () => {
    const { mintIdToken } = await import("./id-token.js");
    const { jobClaims } = await import("./claims.js");
    const stray = await mintIdToken(await keys.activeKey(), jobClaims(pushInput()), {
      issuer,
      audience: "vault",
      clock,
    });
    expect(await checkIdToken({ db, issuer, keys, clock }, stray.token, "vault")).toMatchObject({
      reason: "revoked",
    });
  });

  it("every denial has an audit record with its reason", async () => {
    const { token: requestToken } = await issueRequestToken(db, jobId, { clock });
    const minted = await issueIdTokenForJob(deps(), { requestToken, audience: "vault" });
    const check = (t: string, aud = "vault", iss = issuer) =>
      checkIdToken({ db, issuer: iss, keys, clock }, t, aud);
    await check(minted.token, "other");
    await check(minted.token, "vault", "https://elsewhere.test");
    await check("garbage");
    clock.advance(600);
    await check(minted.token);
    const reasons = (await listAudit(db, { type: "identity.token_rejected" })).map((r) => r.data.reason);
    expect(reasons).toEqual(["audience", "issuer", "malformed", "expired"]);
    const all = JSON.stringify(await listAudit(db));
    expect(all).not.toContain(minted.token.split(".")[2]);
    expect((await verifyAudit(db)).ok).toBe(true);
  });
});
