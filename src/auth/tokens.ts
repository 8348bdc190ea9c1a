import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { appendAudit, recordAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import { newId } from "../ids.js";
import type { Db } from "../store/database.js";
import type { ApiTokenTable } from "../store/tables.js";
import { type AuthDeps, demand, type Principal, type RequestContext } from "./principal.js";
import { isRole } from "./roles.js";
import { toUserInfo, type UserInfo } from "./users.js";

export const tokenPrefix = "alk_";
const secretBytes = 32;
// 32 bytes in unpadded base64url is 43 characters. Checking the shape first turns garbage into a
// 401 without a database round trip.
const tokenPattern = /^alk_[A-Za-z0-9_-]{43}$/;

export const defaultTokenTtlSeconds = 30 * 24 * 60 * 60;
export const maxTokenTtlSeconds = 365 * 24 * 60 * 60;
// last_used_at is a hint for humans ("is this token still in use?"); minute precision is plenty,
// and writing on every request would turn each authenticated read into a write.
const lastUsedResolutionMs = 60_000;

export interface TokenInfo {
  id: string;
  userId: string;
  name: string;
  createdAt: string;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

export interface IssuedToken extends TokenInfo {
  /** The bearer secret. Returned once, here; only its hash is stored. */
  token: string;
}

export interface IssueTokenInput {
  userId: string;
  name: string;
  /** Lifetime in whole seconds; defaults to 30 days, at most 365. Tokens that never expire are not offered. */
  ttlSeconds?: number;
}

/**
 * The stored form of a token. A plain SHA-256 is the right tool here, unlike for passwords: the
 * secret is 256 random bits, so there is nothing for a slow hash (bcrypt, scrypt) to protect against
 * brute force, and a fast hash keeps per-request authentication cheap.
 */
export function hashToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

function sameHash(stored: string, presented: string): boolean {
  const a = Buffer.from(stored, "utf8");
  const b = Buffer.from(presented, "utf8");
  return a.length === b.length && timingSafeEqual(a, b);
}

export function isTokenShaped(value: string): boolean {
  return tokenPattern.test(value);
}

/** Issues a token for oneself (tokens:write-own) or, with users:write, for another user. */
export async function issueToken(
  db: Db,
  input: IssueTokenInput,
  actor: Principal,
  deps: AuthDeps = {},
): Promise<IssuedToken> {
  const clock = deps.clock ?? systemClock;
  const random = deps.random ?? randomBytes;
  const own = input.userId === actor.userId;
  await demand(db, actor, own ? "tokens:write-own" : "users:write", { action: "token.issue" }, clock);

  const name = typeof input.name === "string" ? input.name.trim() : "";
  if (!/^[\x20-\x7e]{1,64}$/.test(name)) {
    throw new AirlockError("REQUEST_INVALID", "a token name is 1-64 printable ASCII characters");
  }
  const ttl = input.ttlSeconds ?? defaultTokenTtlSeconds;
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > maxTokenTtlSeconds) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `ttlSeconds must be a whole number from 1 to ${maxTokenTtlSeconds}`,
      {
        hint: "tokens always expire; issue a new one before the old one runs out",
      },
    );
  }

  const now = clock.now();
  const token = tokenPrefix + random(secretBytes).toString("base64url");
  const row: ApiTokenTable = {
    id: newId("tok", random),
    user_id: input.userId,
    name,
    hash: hashToken(token),
    created_at: now.toISOString(),
    expires_at: new Date(now.getTime() + ttl * 1000).toISOString(),
    revoked_at: null,
    last_used_at: null,
  };
  await db.transaction().execute(async (trx) => {
    const user = await trx
      .selectFrom("users")
      .select(["id", "disabled_at"])
      .where("id", "=", input.userId)
      .executeTakeFirst();
    if (!user) throw new AirlockError("NOT_FOUND", `no user ${input.userId}`);
    if (user.disabled_at !== null) throw new AirlockError("CONFLICT", `user ${input.userId} is disabled`);
    await trx.insertInto("api_tokens").values(row).execute();
    // The audit record names the token by id; neither the secret nor its hash belongs in a log.
    await appendAudit(
      trx,
      {
        type: "token.issued",
        actor: actor.userId,
        data: { tokenId: row.id, userId: row.user_id, name, expiresAt: row.expires_at },
      },
      clock,
    );
  });
  return { ...toTokenInfo(row), token };
}

/** Revokes one's own token, or with users:write anyone's. Revoking twice is a no-op. */
export async function revokeToken(
  db: Db,
  tokenId: string,
  actor: Principal,
  deps: AuthDeps = {},
): Promise<TokenInfo> {
  const clock = deps.clock ?? systemClock;
  const found = await db
    .selectFrom("api_tokens")
    .select(tokenColumns)
    .where("id", "=", tokenId)
    .executeTakeFirst();
  const own = found !== undefined && found.user_id === actor.userId;
  // Someone who may not touch other people's tokens gets the same 403 for another user's token as
  // for one that does not exist, so token ids cannot be probed for existence.
  await demand(db, actor, own ? "tokens:write-own" : "users:write", { action: "token.revoke" }, clock);
  if (!found) throw new AirlockError("NOT_FOUND", `no token ${tokenId}`);
  return db.transaction().execute(async (trx) => {
    const row = await trx
      .selectFrom("api_tokens")
      .select(tokenColumns)
      .where("id", "=", tokenId)
      .executeTakeFirstOrThrow();
    if (row.revoked_at !== null) return toTokenInfo(row);
    const revokedAt = clock.now().toISOString();
    await trx.updateTable("api_tokens").set({ revoked_at: revokedAt }).where("id", "=", tokenId).execute();
    await appendAudit(
      trx,
      { type: "token.revoked", actor: actor.userId, data: { tokenId, userId: row.user_id, name: row.name } },
      clock,
    );
    return toTokenInfo({ ...row, revoked_at: revokedAt });
  });
}

/** Lists one user's tokens (one's own by default; another's with users:read). Never returns hashes. */
export async function listTokens(
  db: Db,
  actor: Principal,
  userId: string = actor.userId,
  deps: AuthDeps = {},
): Promise<TokenInfo[]> {
  await demand(
    db,
    actor,
    userId === actor.userId ? "tokens:write-own" : "users:read",
    { action: "token.list" },
    deps.clock,
  );
  const rows = await db
    .selectFrom("api_tokens")
    .select(tokenColumns)
    .where("user_id", "=", userId)
    .orderBy("created_at")
    .execute();
  return rows.map(toTokenInfo);
}

export type AuthFailureReason =
  | "missing"
  | "duplicate"
  | "scheme"
  | "malformed"
  | "unknown"
  | "expired"
  | "revoked"
  | "user_disabled"
  | "invalid_user";

export type TokenCheck =
  | { ok: true; user: UserInfo; tokenId: string }
  | { ok: false; reason: AuthFailureReason; tokenId?: string; userId?: string };

/**
 * Decides whether a bearer secret is good, without side effects beyond last_used_at. The reason
 * is for the audit log only; callers must not show it to the caller (see `authenticate`).
 */
export async function checkToken(db: Db, bearer: string, clock: Clock): Promise<TokenCheck> {
  if (!isTokenShaped(bearer)) return { ok: false, reason: "malformed" };
  // Looking up by the hash means the secret itself is never compared byte by byte: an index walk
  // leaks at most how much of a stored *hash* an attacker's guess shares, which says nothing about
  // any token (SHA-256 is not invertible). A hash read from the database is no token either: it is
  // not token-shaped, and hashing it again matches nothing.
  const presented = hashToken(bearer);
  const row = await db
    .selectFrom("api_tokens")
    .innerJoin("users", "users.id", "api_tokens.user_id")
    .select([
      "api_tokens.id as tokenId",
      "api_tokens.hash",
      "api_tokens.expires_at",
      "api_tokens.revoked_at",
      "api_tokens.last_used_at",
      "users.id as userId",
      "users.name",
      "users.role",
      "users.created_at",
      "users.disabled_at",
    ])
    .where("api_tokens.hash", "=", presented)
    .executeTakeFirst();
  // The database matched; confirm in constant time, byte for byte, rather than trust a dialect's
  // notion of equal (collations, padded CHAR columns, case-insensitive comparisons).
  if (!row || !sameHash(row.hash, presented)) return { ok: false, reason: "unknown" };
  const ids = { tokenId: row.tokenId, userId: row.userId };
  const now = clock.now();
  if (row.revoked_at !== null) return { ok: false, reason: "revoked", ...ids };
  // A row without an expiry was not written by issueToken; fail closed rather than treat it as eternal.
  if (row.expires_at === null || now.getTime() >= Date.parse(row.expires_at)) {
    return { ok: false, reason: "expired", ...ids };
  }
  if (row.disabled_at !== null) return { ok: false, reason: "user_disabled", ...ids };
  if (!isRole(row.role)) return { ok: false, reason: "invalid_user", ...ids };

  if (row.last_used_at === null || now.getTime() - Date.parse(row.last_used_at) >= lastUsedResolutionMs) {
    await db
      .updateTable("api_tokens")
      .set({ last_used_at: now.toISOString() })
      .where("id", "=", row.tokenId)
      .execute();
  }
  const user = toUserInfo({
    id: row.userId,
    name: row.name,
    role: row.role,
    created_at: row.created_at,
    disabled_at: row.disabled_at,
  });
  return { ok: true, user, tokenId: row.tokenId };
}

/** The one message every authentication failure gets, so a caller cannot probe which tokens exist. */
export const unauthenticatedMessage = "authentication required: no valid API token was presented";

export function unauthenticatedError(): AirlockError {
  return new AirlockError("UNAUTHENTICATED", unauthenticatedMessage, {
    hint: "send 'Authorization: Bearer alk_…' with an unexpired, unrevoked token (`airlock token issue`)",
  });
}

/**
 * Authenticates a bearer secret (the part after "Bearer "). Every refusal is audited as
 * `auth.unauthenticated` with its reason and the request context; the thrown error is the same
 * generic UNAUTHENTICATED whatever the reason, and neither carries the secret.
 */
export async function authenticate(
  db: Db,
  bearer: string,
  clock: Clock,
  context: RequestContext = {},
): Promise<{ user: UserInfo; tokenId: string }> {
  const check = await checkToken(db, bearer, clock);
  if (check.ok) return { user: check.user, tokenId: check.tokenId };
  await auditUnauthenticated(db, check, context, clock);
  throw unauthenticatedError();
}

export async function auditUnauthenticated(
  db: Db,
  failure: { reason: AuthFailureReason; tokenId?: string; userId?: string },
  context: RequestContext,
  clock: Clock,
): Promise<void> {
  await recordAudit(
    db,
    {
      type: "auth.unauthenticated",
      actor: "anonymous",
      data: {
        ...context,
        reason: failure.reason,
        tokenId: failure.tokenId ?? null,
        userId: failure.userId ?? null,
      },
    },
    clock,
  );
}

const tokenColumns = [
  "id",
  "user_id",
  "name",
  "created_at",
  "expires_at",
  "revoked_at",
  "last_used_at",
] as const satisfies readonly (keyof ApiTokenTable)[];

function toTokenInfo(row: Omit<ApiTokenTable, "hash">): TokenInfo {
  return {
    id: row.id,
    userId: row.user_id,
    name: row.name,
    createdAt: row.created_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
    lastUsedAt: row.last_used_at,
  };
}
