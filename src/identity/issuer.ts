import type { JSONWebKeySet } from "jose";
import { appendAudit, recordAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import type { Db } from "../store/database.js";
import { type JobClaimsInput, jobClaims, type SubjectCustomization } from "./claims.js";
import {
  checkAudience,
  type IdTokenVerification,
  type MintedIdToken,
  mintIdToken,
  verifyIdToken,
} from "./id-token.js";
import type { RandomSource } from "./master-key.js";
import { checkRequestToken } from "./request-token.js";
import { SigningKeys } from "./signing-keys.js";

/**
 * The I/O edge of the issuer: what the server's token route and Airlock's own verifiers call.
 * Minting and verifying themselves are pure (id-token.ts); this adds the store and the audit log.
 */
export interface IdentityIssuerDeps {
  db: Db;
  keys: SigningKeys;
  /** The configured issuer URL (iss), normalized by normalizeIssuer. */
  issuer: string;
  /** What the job's token should say: its claims input and its repository's sub customization. */
  claimsFor(jobId: string): Promise<{ input: JobClaimsInput; customization?: SubjectCustomization }>;
  /** Audience when the job asks for none; GitHub uses the owner's URL. Default `${issuer}/${owner}`. */
  defaultAudience?: (input: JobClaimsInput) => string;
  lifetimeSeconds?: number;
  clock?: Clock;
  random?: RandomSource;
}

const generic = () =>
  new AirlockError("UNAUTHENTICATED", "a valid job request token is required", {
    hint: "use ACTIONS_ID_TOKEN_REQUEST_TOKEN from inside a running job",
  });

/** The secret from an `Authorization: bearer …` header (GitHub's clients send lowercase `bearer`). */
export function parseBearer(header: string | undefined): string {
  const m = /^bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return m?.[1] ?? "";
}

/**
 * Handles a job's ID token request: checks its request token, mints a token for its job with
 * the asked audience, records the jti against the job (so teardown revokes it) and audits the
 * issue. Refusals are audited with their reason and throw a generic error.
 */
export async function issueIdTokenForJob(
  deps: IdentityIssuerDeps,
  request: { requestToken: string; audience?: string | undefined },
  context: Record<string, unknown> = {},
): Promise<MintedIdToken> {
  const clock = deps.clock ?? systemClock;
  const check = await checkRequestToken(deps.db, request.requestToken, { clock, context });
  if (!check.ok) throw generic();
  const jobId = check.jobId;
  const { input, customization } = await deps.claimsFor(jobId);
  const audience =
    request.audience ?? deps.defaultAudience?.(input) ?? `${deps.issuer}/${input.repository.owner}`;
  try {
    checkAudience(audience);
  } catch (e) {
    await recordAudit(
      deps.db,
      {
        type: "identity.token_request_denied",
        actor: jobId,
        jobId,
        data: { ...context, reason: "audience_invalid" },
      },
      clock,
    );
    throw e;
  }
  const key = await deps.keys.activeKey();
  const minted = await mintIdToken(key, jobClaims(input, customization), {
    issuer: deps.issuer,
    audience,
    lifetimeSeconds: deps.lifetimeSeconds,
    clock,
    random: deps.random,
  });
  const p = minted.payload;
  await deps.db.transaction().execute(async (trx) => {
    await trx
      .insertInto("id_tokens")
      .values({
        jti: p.jti,
        job_id: jobId,
        kid: minted.kid,
        audience: p.aud,
        subject: p.sub,
        issued_at: new Date(p.iat * 1000).toISOString(),
        expires_at: new Date(p.exp * 1000).toISOString(),
        revoked_at: null,
      })
      .execute();
    await appendAudit(
      trx,
      {
        type: "identity.token_issued",
        actor: jobId,
        runId: p.run_id,
        jobId,
        data: { jti: p.jti, kid: minted.kid, aud: p.aud, sub: p.sub, exp: p.exp },
      },
      clock,
    );
  });
  return minted;
}

/** Revoked, or never recorded (a token we cannot tie to a job is not honoured by Airlock itself). */
export async function isIdTokenRevoked(db: Db, jti: string): Promise<boolean> {
  const row = await db.selectFrom("id_tokens").select("revoked_at").where("jti", "=", jti).executeTakeFirst();
  return !row || row.revoked_at !== null;
}

/** Revokes one ID token by jti. Idempotent; audited when it changes something. */
export async function revokeIdToken(
  db: Db,
  jti: string,
  opts: { actor: string; reason?: string; clock?: Clock },
): Promise<boolean> {
  const clock = opts.clock ?? systemClock;
  return db.transaction().execute(async (trx) => {
    const r = await trx
      .updateTable("id_tokens")
      .set({ revoked_at: clock.now().toISOString() })
      .where("jti", "=", jti)
      .where("revoked_at", "is", null)
      .returning("job_id")
      .executeTakeFirst();
    if (!r) return false;
    await appendAudit(
      trx,
      {
        type: "identity.token_revoked",
        actor: opts.actor,
        jobId: r.job_id,
        data: { jti, reason: opts.reason ?? "revoked" },
      },
      clock,
    );
    return true;
  });
}

/**
 * Airlock's own check of a presented ID token (e.g. a secret broker exchanging it): the pure
 * verification plus revocation from the store; every denial audited as `identity.token_rejected`
 * with its reason.
 */
export async function checkIdToken(
  deps: { db: Db; issuer: string; keys: SigningKeys | JSONWebKeySet; clock?: Clock },
  token: string,
  audience: string | readonly string[],
  context: Record<string, unknown> = {},
): Promise<IdTokenVerification> {
  const clock = deps.clock ?? systemClock;
  const jwks = deps.keys instanceof SigningKeys ? await deps.keys.jwks() : deps.keys;
  const result = await verifyIdToken(token, {
    issuer: deps.issuer,
    audience,
    keys: jwks,
    clock,
    isRevoked: (jti) => isIdTokenRevoked(deps.db, jti),
  });
  if (!result.ok) {
    await recordAudit(
      deps.db,
      {
        type: "identity.token_rejected",
        actor: "anonymous",
        data: {
          ...context,
          reason: result.reason,
          detail: result.detail,
          kid: result.kid ?? null,
          jti: result.jti ?? null,
        },
      },
      clock,
    );
  }
  return result;
}
