import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listAudit } from "../audit/log.js";
import { verifyAudit } from "../audit/verify.js";
import { AirlockError } from "../errors.js";
import { type Db, openSqlite } from "../store/database.js";
import { type AuthorizeRequest, authorize, parseBearer } from "./guard.js";
import type { Principal } from "./principal.js";
import type { Permission, Role } from "./roles.js";
import { issueToken, revokeToken } from "./tokens.js";
import { createUser, ensureLocalAdmin } from "./users.js";

let t = Date.parse("2030-01-01T00:00:00.000Z");
const clock = { now: () => new Date(t) };
let db: Db;
let admin: Principal;
const tokens = {} as Record<Role, { token: string; id: string; userId: string }>;

function req(
  authorizationHeader: string | undefined,
  permission: Permission = "runs:read",
): AuthorizeRequest {
  return { authorizationHeader, permission, route: "/api/v1/runs", method: "POST", ip: "203.0.113.7" };
}

/** Calls authorize, expecting a refusal; checks the refusal wrote exactly one record and leaked nothing. */
async function refused(r: AuthorizeRequest, code: "UNAUTHENTICATED" | "FORBIDDEN", secret?: string) {
  const before = (await listAudit(db)).length;
  const err = await authorize(db, r, clock).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(AirlockError);
  const e = err as AirlockError;
  expect(e.code).toBe(code);
  expect(e.status).toBe(code === "UNAUTHENTICATED" ? 401 : 403);
  const after = await listAudit(db);
  expect(after.length).toBe(before + 1);
  const record = after[after.length - 1];
  expect(record?.type).toBe(code === "UNAUTHENTICATED" ? "auth.unauthenticated" : "auth.forbidden");
  expect(record?.data).toMatchObject({ route: "/api/v1/runs", method: "POST", ip: "203.0.113.7" });
  expect(typeof record?.data.reason).toBe("string");
  if (secret) {
    const { rows } = await sql<Record<string, unknown>>`select * from audit_events`.execute(db);
    expect(JSON.stringify(rows)).not.toContain(secret);
    expect(JSON.stringify({ ...e, message: e.message, stack: e.stack })).not.toContain(secret);
  }
  return { error: e, record };
}

beforeEach(async () => {
  t = Date.parse("2030-01-01T00:00:00.000Z");
  db = await openSqlite(":memory:");
  admin = await ensureLocalAdmin(db, { clock });
  for (const role of ["admin", "approver", "submitter", "viewer"] as const) {
    const u = await createUser(db, { name: `u-${role}`, role }, admin, { clock });
    const issued = await issueToken(db, { userId: u.id, name: "t" }, admin, { clock });
    tokens[role] = { token: issued.token, id: issued.id, userId: u.id };
  }
});
afterEach(async () => db.destroy());

describe("authorize", () => {
  it("returns the authenticated principal, which is what a route uses as actor", async () => {
    const p = await authorize(db, req(`Bearer ${tokens.submitter.token}`, "runs:create"), clock);
    expect(p).toEqual({
      userId: tokens.submitter.userId,
      userName: "u-submitter",
      role: "submitter",
      tokenId: tokens.submitter.id,
    });
    // Scheme is case-insensitive.
    await authorize(db, req(`bearer ${tokens.viewer.token}`), clock);
  });

  it.each<[Role, Permission, boolean]>([
    ["viewer", "runs:read", true],
    ["viewer", "runs:create", false],
    ["submitter", "runs:create", true],
    ["submitter", "jobs:approve", false],
    ["approver", "jobs:approve", true],
    ["approver", "users:write", false],
    ["admin", "jobs:approve", true],
    ["admin", "users:write", true],
    ["admin", "secrets:write", true],
  ])("role matrix: %s %s -> %s", async (role, permission, allowed) => {
    const r = req(`Bearer ${tokens[role].token}`, permission);
    if (allowed) {
      expect((await authorize(db, r, clock)).role).toBe(role);
    } else {
      const { error, record } = await refused(r, "FORBIDDEN", tokens[role].token);
      expect(error.message).toBe(`role ${role} may not ${permission}`);
      expect(record).toMatchObject({ actor: tokens[role].userId, data: { permission, role } });
    }
  });

  it.each<[string, string | undefined, string]>([
    ["missing header", undefined, "missing"],
    ["empty header", "  ", "missing"],
    ["basic scheme", "Basic YWxpY2U6c2VjcmV0", "scheme"],
    ["bearer with nothing", "Bearer", "malformed"],
    ["two credentials", "Bearer alk_a alk_b", "malformed"],
    ["not an Airlock token", "Bearer eyJhbGciOiJIUzI1NiJ9.e30.x", "malformed"],
  ])("401 for %s", async (_name, header, reason) => {
    const { error, record } = await refused(req(header), "UNAUTHENTICATED");
    expect(record?.data.reason).toBe(reason);
    expect(record?.actor).toBe("anonymous");
    if (header?.trim()) expect(error.message).not.toContain(header.trim());
  });

  it("401 for a real token sent without the Bearer scheme, without echoing it", async () => {
    const { token } = tokens.admin;
    const { record } = await refused(req(token), "UNAUTHENTICATED", token);
    expect(record?.data.reason).toBe("scheme");
    await refused(req(`Token ${token}`), "UNAUTHENTICATED", token);
  });

  it("401 for expired, revoked and unknown tokens, all with one message and no token text", async () => {
    const messages = new Set<string>();
    const { token: revoked, id } = tokens.viewer;
    await revokeToken(db, id, admin, { clock });
    messages.add((await refused(req(`Bearer ${revoked}`), "UNAUTHENTICATED", revoked)).error.message);

    const unknown = `alk_${"z".repeat(43)}`;
    messages.add((await refused(req(`Bearer ${unknown}`), "UNAUTHENTICATED", unknown)).error.message);

    t += 31 * 24 * 60 * 60 * 1000;
    const expired = tokens.approver.token;
    messages.add((await refused(req(`Bearer ${expired}`), "UNAUTHENTICATED", expired)).error.message);

    expect(messages.size).toBe(1);
    const reasons = (await listAudit(db, { type: "auth.unauthenticated" })).map((e) => e.data.reason);
    expect(reasons).toEqual(["revoked", "unknown", "expired"]);
    expect((await verifyAudit(db)).ok).toBe(true);
  });

  it("never leaves any issued token's text in the audit table", async () => {
    for (const role of ["viewer", "submitter"] as const) {
      await refused(req(`Bearer ${tokens[role].token}`, "users:write"), "FORBIDDEN", tokens[role].token);
    }
    const { rows } = await sql<Record<string, unknown>>`select * from audit_events`.execute(db);
    const text = JSON.stringify(rows);
    for (const { token } of Object.values(tokens)) expect(text).not.toContain(token.slice(4));
  });
});

describe("parseBearer", () => {
  it("takes exactly one credential after a Bearer scheme", () => {
    expect(parseBearer("Bearer abc")).toEqual({ ok: true, token: "abc" });
    expect(parseBearer("  BEARER   abc  ")).toEqual({ ok: true, token: "abc" });
    expect(parseBearer("Bearer\tabc")).toEqual({ ok: true, token: "abc" });
    expect(parseBearer("abc")).toEqual({ ok: false, reason: "scheme" });
    expect(parseBearer("Bearer a b")).toEqual({ ok: false, reason: "malformed" });
  });
});
