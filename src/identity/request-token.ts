import { createHash, randomBytes } from "node:crypto";
import type { Kysely, Transaction } from "kysely";
import { appendAudit, recordAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import type { Db } from "../store/database.js";
import type { Database } from "../store/tables.js";
import type { RandomSource } from "./master-key.js";

type Executor = Kysely<Database> | Transaction<Database>;

/**
 * A job's request token: the bearer secret a job presents (as GitHub jobs present
 * ACTIONS_ID_TOKEN_REQUEST_TOKEN) to get ID tokens. 32 random bytes, shown once in the job's
 * environment; the store keeps only its SHA-256 (256 random bits need no slow hash).
 */
export const requestTokenPrefix = "ajr_";
const requestTokenPattern = /^ajr_[A-Za-z0-9_-]{43}$/;
/** Default: GitHub's longest job (6 h). Teardown revokes it much sooner; this is the backstop. */
export const defaultRequestTokenTtlSeconds = 6 * 60 * 60;

export const idTokenRequestPath = "/api/v1/identity/token";

export interface IssuedRequestToken {
  token: string;
  jobId: string;
  expiresAt: string;
}

export interface RequestTokenDeps {
  clock?: Clock;
  random?: RandomSource;
  actor?: string;
}

export function hashRequestToken(token: string): string {
  return createHash("sha256").update(token, "utf8").digest("hex");
}

/** Runs fn in the caller's transaction, or in a new one, so the change and its audit record commit together. */
export async function inTransaction<T>(db: Executor, fn: (trx: Executor) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db);
  return (db as Kysely<Database>).transaction().execute(fn);
}

/** Issues a request token for a job (at provisioning). Pass the provisioning transaction if there is one. */
export async function issueRequestToken(
  db: Executor,
  jobId: string,
  opts: RequestTokenDeps & { ttlSeconds?: number } = {},
): Promise<IssuedRequestToken> {
  const clock = opts.clock ?? systemClock;
  const ttl = opts.ttlSeconds ?? defaultRequestTokenTtlSeconds;
  if (!Number.isInteger(ttl) || ttl <= 0) {
    throw new AirlockError(
      "REQUEST_INVALID",
      "a request token lifetime is a positive whole number of seconds",
    );
  }
  const token = requestTokenPrefix + (opts.random ?? randomBytes)(32).toString("base64url");
  const now = clock.now();
  const expiresAt = new Date(now.getTime() + ttl * 1000).toISOString();
  await inTransaction(db, async (trx) => {
    await trx
      .insertInto("job_request_tokens")
      .values({
        hash: hashRequestToken(token),
        job_id: jobId,
        created_at: now.toISOString(),
        expires_at: expiresAt,
        revoked_at: null,
      })
      .execute();
    await appendAudit(
      trx,
      { type: "identity.request_token_issued", actor: opts.actor ?? "system", jobId, data: { expiresAt } },
      clock,
    );
  });
  return { token, jobId, expiresAt };
}

export type RequestTokenRefusal = "malformed" | "unknown" | "expired" | "revoked";
export type RequestTokenCheck =
  | { ok: true; jobId: string }
  | { ok: false; reason: RequestTokenRefusal; jobId?: string };

/**
 * Decides whether a presented request token is good. Every refusal is audited
 * (`identity.request_token_denied`, with the reason and the request context, never the token).
 */
export async function checkRequestToken(
  db: Db,
  token: string,
  opts: { clock?: Clock; context?: Record<string, unknown> } = {},
): Promise<RequestTokenCheck> {
  const clock = opts.clock ?? systemClock;
  const result = await decide(db, token, clock);
  if (!result.ok) {
    await recordAudit(
      db,
      {
        type: "identity.request_token_denied",
        actor: "anonymous",
        jobId: result.jobId ?? null,
        data: { ...opts.context, reason: result.reason },
      },
      clock,
    );
  }
  return result;
}

async function decide(db: Db, token: string, clock: Clock): Promise<RequestTokenCheck> {
  if (typeof token !== "string" || !requestTokenPattern.test(token))
    return { ok: false, reason: "malformed" };
  // Looked up by hash, so the secret is never compared byte by byte (no timing channel on it).
  const row = await db
    .selectFrom("job_request_tokens")
    .select(["job_id", "expires_at", "revoked_at"])
    .where("hash", "=", hashRequestToken(token))
    .executeTakeFirst();
  if (!row) return { ok: false, reason: "unknown" };
  if (row.revoked_at !== null) return { ok: false, reason: "revoked", jobId: row.job_id };
  if (clock.now().getTime() >= Date.parse(row.expires_at))
    return { ok: false, reason: "expired", jobId: row.job_id };
  return { ok: true, jobId: row.job_id };
}

/**
 * Ends a job's identity (at teardown): its request tokens and every ID token minted for it are
 * revoked, so a token replayed after the job ended is refused by Airlock's own verifiers.
 * Idempotent; audited as `identity.job_tokens_revoked` when anything changed.
 */
export async function revokeJobTokens(
  db: Executor,
  jobId: string,
  opts: RequestTokenDeps & { reason?: string } = {},
): Promise<{ requestTokens: number; idTokens: number }> {
  const clock = opts.clock ?? systemClock;
  const at = clock.now().toISOString();
  return inTransaction(db, async (trx) => {
    const t = trx;
    const req = await t
      .updateTable("job_request_tokens")
      .set({ revoked_at: at })
      .where("job_id", "=", jobId)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    const ids = await t
      .updateTable("id_tokens")
      .set({ revoked_at: at })
      .where("job_id", "=", jobId)
      .where("revoked_at", "is", null)
      .executeTakeFirst();
    const counts = { requestTokens: Number(req.numUpdatedRows), idTokens: Number(ids.numUpdatedRows) };
    if (counts.requestTokens + counts.idTokens > 0) {
      await appendAudit(
        trx,
        {
          type: "identity.job_tokens_revoked",
          actor: opts.actor ?? "system",
          jobId,
          data: { ...counts, reason: opts.reason ?? "job ended" },
        },
        clock,
      );
    }
    return counts;
  });
}

/**
 * The URL a job is given as ACTIONS_ID_TOKEN_REQUEST_URL. It carries a query already because
 * GitHub's clients append `&audience=…` to it (actions/core's getIDToken, curl recipes).
 */
export function idTokenRequestUrl(serverUrl: string): string {
  return `${serverUrl.replace(/\/+$/, "")}${idTokenRequestPath}?api-version=2.0`;
}

/** The two variables a job's steps see, named as on GitHub so existing scripts work unchanged. */
export function jobIdentityEnv(serverUrl: string, token: IssuedRequestToken): Record<string, string> {
  return {
    ACTIONS_ID_TOKEN_REQUEST_URL: idTokenRequestUrl(serverUrl),
    ACTIONS_ID_TOKEN_REQUEST_TOKEN: token.token,
  };
}
