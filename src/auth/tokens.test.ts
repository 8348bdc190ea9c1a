import { createHash } from "node:crypto";
import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listAudit } from "../audit/log.js";
import { isAirlockError } from "../errors.js";
import { type Db, openSqlite } from "../store/database.js";
import type { Principal } from "./principal.js";
import { authenticate, issueToken, listTokens, revokeToken, unauthenticatedMessage } from "./tokens.js";
import { createUser, disableUser, ensureLocalAdmin } from "./users.js";

const day = 24 * 60 * 60 * 1000;
let t = 0;
const clock = { now: () => new Date(t) };

let db: Db;
let admin: Principal;
let sub: Principal;

async function tableText(table: "audit_events" | "api_tokens"): Promise<string> {
  const { rows } = await sql<Record<string, unknown>>`select * from ${sql.table(table)}`.execute(db);
  return JSON.stringify(rows);
}

/** Runs fn, which must fail; returns the error after checking that it never mentions the secret. */
async function refusal(fn: () => Promise<unknown>, secret: string): Promise<Error> {
  const err = await fn().then(
    () => {
      throw new Error("expected a refusal");
    },
    (e: unknown) => e as Error,
  );
  expect(isAirlockError(err) && err.code).toBe("UNAUTHENTICATED");
  expect(err.message).toBe(unauthenticatedMessage);
  expect(JSON.stringify({ ...err, message: err.message, stack: err.stack })).not.toContain(secret.slice(4));
  expect(await tableText("audit_events")).not.toContain(secret.slice(4));
  return err;
}

beforeEach(async () => {
  t = Date.parse("2030-01-01T00:00:00.000Z");
  db = await openSqlite(":memory:");
  admin = await ensureLocalAdmin(db, { clock });
  const u = await createUser(db, { name: "sam", role: "submitter" }, admin, { clock });
  sub = { userId: u.id, userName: u.name, role: u.role, tokenId: null };
});
afterEach(async () => db.destroy());

describe("tokens", () => {
  it("shows the secret once and stores only its sha256", async () => {
    const issued = await issueToken(db, { userId: sub.userId, name: "laptop" }, sub, { clock });
    expect(issued.token).toMatch(/^alk_[A-Za-z0-9_-]{43}$/);
    expect(issued.expiresAt).toBe(new Date(t + 30 * day).toISOString());

    const stored = await tableText("api_tokens");
    expect(stored).not.toContain(issued.token);
    expect(stored).not.toContain(issued.token.slice(4));
    expect(stored).toContain(createHash("sha256").update(issued.token).digest("hex"));

    const listed = await listTokens(db, sub);
    expect(listed).toEqual([expect.objectContaining({ id: issued.id, name: "laptop" })]);
    expect(JSON.stringify(listed)).not.toMatch(/hash|alk_/);
    expect(Object.keys(listed[0] ?? {})).not.toContain("token");

    const audit = await tableText("audit_events");
    expect(audit).not.toContain(issued.token.slice(4));
    expect((await listAudit(db, { type: "token.issued" }))[0]?.data).toMatchObject({ tokenId: issued.id });
  });

  it("authenticates a good token and records last use at most once a minute", async () => {
    const { token, id } = await issueToken(db, { userId: sub.userId, name: "ci" }, sub, { clock });
    const got = await authenticate(db, token, clock);
    expect(got).toMatchObject({ tokenId: id, user: { id: sub.userId, role: "submitter" } });
    const lastUsed = async () => (await listTokens(db, sub))[0]?.lastUsedAt;
    expect(await lastUsed()).toBe(new Date(t).toISOString());
    const first = t;
    t += 30_000;
    await authenticate(db, token, clock);
    expect(await lastUsed()).toBe(new Date(first).toISOString());
    t += 30_000;
    await authenticate(db, token, clock);
    expect(await lastUsed()).toBe(new Date(t).toISOString());
  });

  it("rejects an expired token", async () => {
    const { token } = await issueToken(db, { userId: sub.userId, name: "short", ttlSeconds: 60 }, sub, {
      clock,
    });
    t += 59_999;
    await authenticate(db, token, clock);
    t += 1;
    await refusal(() => authenticate(db, token, clock), token);
    const [event] = await listAudit(db, { type: "auth.unauthenticated" });
    expect(event?.data.reason).toBe("expired");
  });

  it("rejects a revoked token", async () => {
    const { token, id } = await issueToken(db, { userId: sub.userId, name: "x" }, sub, { clock });
    await revokeToken(db, id, sub, { clock });
    await refusal(() => authenticate(db, token, clock), token);
    expect((await listAudit(db, { type: "auth.unauthenticated" }))[0]?.data.reason).toBe("revoked");
    expect((await listAudit(db, { type: "token.revoked" })).length).toBe(1);
  });

  it("rejects the token of a disabled user", async () => {
    const { token } = await issueToken(db, { userId: sub.userId, name: "x" }, sub, { clock });
    await disableUser(db, sub.userId, admin, { clock });
    await refusal(() => authenticate(db, token, clock), token);
    expect((await listAudit(db, { type: "auth.unauthenticated" }))[0]?.data.reason).toBe("user_disabled");
  });

  it("gives unknown and malformed tokens the same answer, differing only in the audit reason", async () => {
    const unknown = `alk_${"A".repeat(43)}`;
    const malformed = "alk_short";
    const a = await refusal(() => authenticate(db, unknown, clock), unknown);
    const b = await refusal(() => authenticate(db, malformed, clock), malformed);
    expect(a.message).toBe(b.message);
    const reasons = (await listAudit(db, { type: "auth.unauthenticated" })).map((e) => e.data.reason);
    expect(reasons).toEqual(["unknown", "malformed"]);
    const audit = await tableText("audit_events");
    expect(audit).not.toContain("AAAAAAAAAA");
    expect(audit).not.toContain(malformed);
  });

  it("validates ttl: always an expiry, at most a year", async () => {
    for (const ttlSeconds of [0, -1, 1.5, 366 * 24 * 3600]) {
      await expect(
        issueToken(db, { userId: sub.userId, name: "x", ttlSeconds }, sub, { clock }),
      ).rejects.toMatchObject({
        code: "REQUEST_INVALID",
      });
    }
    const year = await issueToken(db, { userId: sub.userId, name: "x", ttlSeconds: 365 * 24 * 3600 }, sub, {
      clock,
    });
    expect(year.expiresAt).toBe(new Date(t + 365 * day).toISOString());
  });

  it("lets owners manage their own tokens and only admins manage others'", async () => {
    const v = await createUser(db, { name: "vic", role: "viewer" }, admin, { clock });
    const vic: Principal = { userId: v.id, userName: v.name, role: v.role, tokenId: null };
    const own = await issueToken(db, { userId: vic.userId, name: "mine" }, vic, { clock });
    await expect(
      issueToken(db, { userId: sub.userId, name: "theirs" }, vic, { clock }),
    ).rejects.toMatchObject({
      code: "FORBIDDEN",
    });
    const subs = await issueToken(db, { userId: sub.userId, name: "s" }, admin, { clock });
    await expect(revokeToken(db, subs.id, vic, { clock })).rejects.toMatchObject({ code: "FORBIDDEN" });
    await expect(listTokens(db, vic, sub.userId)).rejects.toMatchObject({ code: "FORBIDDEN" });
    expect((await listAudit(db, { type: "auth.forbidden" })).length).toBe(3);

    await revokeToken(db, own.id, vic, { clock });
    await revokeToken(db, subs.id, admin, { clock });
    expect((await listTokens(db, admin, sub.userId))[0]?.revokedAt).toBe(new Date(t).toISOString());
    await expect(revokeToken(db, "tok_missing", admin)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("refuses tokens for disabled or missing users", async () => {
    await disableUser(db, sub.userId, admin, { clock });
    await expect(issueToken(db, { userId: sub.userId, name: "x" }, admin, { clock })).rejects.toMatchObject({
      code: "CONFLICT",
    });
    await expect(
      issueToken(db, { userId: "usr_missing", name: "x" }, admin, { clock }),
    ).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
    expect(await tableText("api_tokens")).toBe("[]");
  });
});

describe("tokens: existence is not disclosed", () => {
  it("refuses a non-admin revoking another's token exactly as revoking a token that does not exist", async () => {
    const theirs = await issueToken(db, { userId: admin.userId, name: "admins" }, admin, { clock });
    const a = await revokeToken(db, theirs.id, sub, { clock }).catch((e: unknown) => e as Error);
    const b = await revokeToken(db, "tok_aaaaaaaaaaaaaaaa", sub, { clock }).catch((e: unknown) => e as Error);
    expect(a).toMatchObject({ code: "FORBIDDEN" });
    expect(b).toMatchObject({ code: "FORBIDDEN", message: a instanceof Error ? a.message : "" });
    const refusals = await listAudit(db, { type: "auth.forbidden" });
    expect(refusals.map((r) => r.data.action)).toEqual(["token.revoke", "token.revoke"]);
    // The admin's token still works.
    await expect(authenticate(db, theirs.token, clock)).resolves.toMatchObject({ tokenId: theirs.id });
  });
});
