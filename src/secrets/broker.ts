/**
 * The secret broker: a job presents its OIDC ID token and names the secrets it wants; the token
 * is verified, its job must still be live, each name is resolved to the most specific scope the
 * token can see (environment > repository > organisation), and Cedar decides `GetSecret` for each
 * with the token's claims as context. The answer is a lease (names and expiry stored; values
 * returned once, never stored with it). Every grant and every denial is audited with the claims
 * and the policies that decided — never a value, never the token.
 *
 * All or nothing: if any requested secret is missing or denied, nothing is granted and the error
 * names each refused secret and why. A job that can live without a secret asks for it separately.
 */
import { appendAudit, recordAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import type { IdTokenPayload } from "../identity/id-token.js";
import type { KeyEncryptionKey, RandomSource } from "../identity/master-key.js";
import type { Decision, PolicyEngine } from "../policy/index.js";
import type { Db } from "../store/database.js";
import { defaultLeaseTtlSeconds, insertLease } from "./leases.js";
import { lookupScopes, normalizeSecretName, orgOf, type SecretScope, scopeKey } from "./scope.js";
import { findSealedSecrets, openSecret, type SealedSecret } from "./store.js";
import type { TokenVerifier } from "./verifier.js";

/** Whether the job a token was issued to may still receive secrets, and until when at most. */
export interface JobLiveness {
  live: boolean;
  /** The job's hard end (start + timeout); leases never outlive it. Null or absent: no cap. */
  endsAt?: Date | null;
  /**
   * The secret names the job declares (its workflow's `secrets:` key). When given, the broker
   * refuses any other name (`not_declared`) before it looks anything up: a job's code may exchange
   * its token itself, but it must not reach past what its workflow asked for and an admin could
   * review. Absent: the embedder has no declarations and the request is taken as it comes.
   */
  declared?: readonly string[];
}

export interface BrokerDeps {
  db: Db;
  kek: KeyEncryptionKey;
  policy: Pick<PolicyEngine, "decideGetSecret">;
  /** The audience(s) a token must carry to be exchanged here, e.g. `${issuer}/secrets`. */
  audience: string | readonly string[];
  verify: TokenVerifier;
  /** The job a verified token was issued to (identity's id_tokens: jti → job_id); null if unknown. */
  jobForToken(payload: IdTokenPayload): Promise<string | null | undefined>;
  /**
   * Is this job still running (provisioning counts), does it belong to `runId` (the token's
   * run_id claim), and when must it end? Anything else — finished, cancelled, unknown — is not live.
   */
  jobLiveness(job: { jobId: string; runId: string }): Promise<JobLiveness>;
  clock?: Clock;
  random?: RandomSource;
  /** Lease lifetime before the cap at the job's end. Default 600 s. */
  leaseTtlSeconds?: number;
  /** Most names one request may ask for. Default 100. */
  maxSecretsPerRequest?: number;
}

export interface ExchangeRequest {
  token: string;
  secrets: readonly string[];
  /** Narrows which accepted audience the token must carry; must be one of BrokerDeps.audience. */
  audience?: string | undefined;
}

export interface SecretGrant {
  leaseId: string;
  jobId: string;
  runId: string;
  /** Name (upper case) → value. Hand it to the job; do not log or store it. */
  secrets: Record<string, string>;
  /** Name → the scope its value came from. */
  scopes: Record<string, SecretScope>;
  issuedAt: string;
  expiresAt: string;
}

/** Why a request, or one secret in it, was refused; the value of `reason` in the audit record. */
export type DenialReason =
  | "audience_not_accepted"
  | `token_${string}`
  | "token_unknown"
  | "token_other_job"
  | "claims_invalid"
  | "job_ended"
  | "request_invalid"
  | "not_declared"
  | "not_found"
  | "policy"
  | "store_failed";

export interface SecretDecision {
  name: string;
  /** scopeKey of the secret the name resolved to; null when none was found. */
  scope: string | null;
  version: number | null;
  allowed: boolean;
  reason?: "not_found" | "policy";
  /** Ids of the deciding policies (permits on allow, forbids on deny). */
  policies: string[];
  errors?: string[];
}

/** Where the request came from: the job's own call, or the controller at provisioning. */
export type ExchangeVia = "exchange" | "provision";

export interface ExchangeContext {
  via?: ExchangeVia;
  /** At provisioning: the token must belong to this job. */
  expectJobId?: string;
  /** Caller facts for the audit record (e.g. remote address); never secret material. */
  audit?: Record<string, unknown>;
  /**
   * The calling job's masker. A job's code chooses what it sends: a name shaped like one of its
   * secret values, or a forged token whose `kid` header is one. What the request carries is
   * recorded (the audit's `requested`, the token's kid), so with a masker it is masked first,
   * and a token whose header holds a secret is refused before anything else looks at it.
   */
  mask?: (text: string) => string;
}

const defaultMaxSecrets = 100;

/** Exchanges a job's ID token for the named secrets. Throws (after auditing) on any refusal. */
export async function exchange(
  deps: BrokerDeps,
  request: ExchangeRequest,
  context: ExchangeContext = {},
): Promise<SecretGrant> {
  const clock = deps.clock ?? systemClock;
  const via = context.via ?? "exchange";
  const base = { via, ...(context.audit ?? {}) };
  const mask = context.mask ?? ((text: string) => text);
  const deny = async (
    reason: DenialReason,
    error: AirlockError,
    extra: { jobId?: string; payload?: IdTokenPayload; data?: Record<string, unknown> } = {},
  ): Promise<never> => {
    await recordAudit(
      deps.db,
      {
        type: "secret.denied",
        actor: extra.jobId ?? "anonymous",
        jobId: extra.jobId ?? null,
        runId: typeof extra.payload?.run_id === "string" ? extra.payload.run_id : null,
        data: {
          ...base,
          reason,
          requested: requestedForAudit(request.secrets).map(mask),
          ...(extra.payload ? { claims: decidingClaims(extra.payload) } : {}),
          ...(extra.data ?? {}),
        },
      },
      clock,
    );
    throw error;
  };

  // 1. The token: an accepted audience, a valid signature and claims, not revoked.
  const accepted = typeof deps.audience === "string" ? [deps.audience] : [...deps.audience];
  if (request.audience !== undefined && !accepted.includes(request.audience)) {
    return deny("audience_not_accepted", unauthenticated("the secret broker does not accept that audience"));
  }
  // A forged header is recorded (kid) by every verifier that rejects it; one holding a secret is
  // refused here, unrecorded, before a verifier sees it.
  const kid = unverifiedKid(request.token);
  if (kid !== undefined && mask(kid) !== kid) {
    return deny("token_malformed", unauthenticated("the ID token was rejected (malformed)"), {
      data: { detail: "the token header holds a secret of the caller", kid: "***" },
    });
  }
  const verification = await deps.verify(request.token, request.audience ?? accepted);
  if (!verification.ok) {
    return deny(
      `token_${verification.reason}`,
      unauthenticated(`the ID token was rejected (${verification.reason})`),
      {
        data: {
          detail: verification.detail,
          kid: verification.kid === undefined ? null : mask(verification.kid),
          jti: verification.jti ?? null,
        },
      },
    );
  }
  const payload = verification.payload;

  // 2. Its job: known, the expected one, consistent, and still running.
  const jobId = await deps.jobForToken(payload);
  if (!jobId) {
    return deny("token_unknown", unauthenticated("the ID token was not issued to a job"), { payload });
  }
  if (context.expectJobId !== undefined && jobId !== context.expectJobId) {
    return deny(
      "token_other_job",
      new AirlockError("FORBIDDEN", "the ID token belongs to another job", {
        hint: "a job can only obtain its own secrets",
      }),
      { jobId: context.expectJobId, payload, data: { tokenJobId: jobId } },
    );
  }
  if (!claimsConsistent(payload)) {
    return deny("claims_invalid", unauthenticated("the ID token's repository claims are malformed"), {
      jobId,
      payload,
    });
  }
  const liveness = await deps.jobLiveness({ jobId, runId: payload.run_id });
  const now = clock.now();
  if (!liveness.live || (liveness.endsAt && liveness.endsAt.getTime() <= now.getTime())) {
    return deny("job_ended", unauthenticated("the ID token's job has ended"), { jobId, payload });
  }

  // 3. The request: valid names, deduplicated.
  let names: string[];
  try {
    names = parseNames(request.secrets, deps.maxSecretsPerRequest ?? defaultMaxSecrets);
  } catch (e) {
    return deny("request_invalid", e as AirlockError, {
      jobId,
      payload,
      data: { detail: (e as AirlockError).message },
    });
  }

  // 4. Only what the job declared: checked before any lookup, so an undeclared name is never read.
  if (liveness.declared !== undefined) {
    const declared = new Set(liveness.declared.map((n) => n.toUpperCase()));
    const undeclared = names.filter((n) => !declared.has(n));
    if (undeclared.length > 0) {
      return deny(
        "not_declared",
        new AirlockError(
          "POLICY_DENIED",
          `secret request refused: ${undeclared.map(mask).join(", ")} ${undeclared.length === 1 ? "is" : "are"} not declared by the job`,
          {
            hint: "nothing was granted; list every secret a job may obtain in its workflow's secrets: key",
            details: { refused: undeclared.map((name) => ({ name: mask(name), reason: "not_declared" })) },
          },
        ),
        { jobId, payload, data: { undeclared: undeclared.map(mask) } },
      );
    }
  }

  // 5. Resolve each name to its most specific visible scope and let Cedar decide.
  const scopes = lookupScopes({ repository: payload.repository, environment: payload.environment });
  const found = await findSealedSecrets(deps.db, scopes, names);
  const chosen = new Map<string, SealedSecret>();
  const rank = (s: SecretScope) => scopes.findIndex((c) => scopeKey(c) === scopeKey(s));
  for (const s of found) {
    const prior = chosen.get(s.name);
    if (!prior || rank(s.scope) < rank(prior.scope)) chosen.set(s.name, s);
  }
  const decisions: SecretDecision[] = names.map((name) => {
    const s = chosen.get(name);
    if (!s) return { name, scope: null, version: null, allowed: false, reason: "not_found", policies: [] };
    const d = deps.policy.decideGetSecret({
      workload: { jobId, claims: payload },
      secret: {
        name,
        scope: s.scope.kind,
        org: s.scope.kind === "org" ? s.scope.org : orgOf(s.scope.repo),
        repo: s.scope.kind === "org" ? "" : s.scope.repo,
        environment: s.scope.kind === "environment" ? s.scope.environment : "",
      },
    });
    return decisionOf(name, s, d);
  });
  const refused = decisions.filter((d) => !d.allowed);
  if (refused.length > 0) {
    const anyPolicy = refused.some((d) => d.reason === "policy");
    const message = `secret request refused: ${refused.map(refusalText).join("; ")}`;
    return deny(
      anyPolicy ? "policy" : "not_found",
      new AirlockError(anyPolicy ? "POLICY_DENIED" : "NOT_FOUND", message, {
        hint: anyPolicy
          ? "nothing was granted; see the job's secret.denied audit record for the claims and policies that decided"
          : `nothing was granted; secrets are looked up in ${scopes.map(scopeKey).join(", ")}`,
        details: {
          refused: refused.map((d) => ({ name: d.name, reason: d.reason, policies: d.policies })),
        },
      }),
      { jobId, payload, data: { decisions } },
    );
  }

  // 6. Open the values, then record the lease and the grant together.
  const secrets: Record<string, string> = {};
  const grantedScopes: Record<string, SecretScope> = {};
  try {
    for (const name of names) {
      const s = chosen.get(name) as SealedSecret;
      secrets[name] = await openSecret(deps.kek, s);
      grantedScopes[name] = s.scope;
    }
  } catch (e) {
    return deny(
      "store_failed",
      e instanceof AirlockError
        ? e
        : new AirlockError("STORE_FAILED", "a secret could not be opened", { cause: e }),
      { jobId, payload, data: { decisions } },
    );
  }
  const ttlMs = (deps.leaseTtlSeconds ?? defaultLeaseTtlSeconds) * 1000;
  const expires = Math.min(now.getTime() + ttlMs, liveness.endsAt?.getTime() ?? Number.POSITIVE_INFINITY);
  const issuedAt = now.toISOString();
  const expiresAt = new Date(expires).toISOString();
  const leaseNames = names.map((name) => ({ name, scope: scopeKey(grantedScopes[name] as SecretScope) }));
  const leaseId = await deps.db.transaction().execute(async (trx) => {
    const id = await insertLease(
      trx,
      { jobId, runId: payload.run_id, names: leaseNames, issuedAt, expiresAt },
      deps.random,
    );
    await appendAudit(
      trx,
      {
        type: "secret.granted",
        actor: jobId,
        jobId,
        runId: payload.run_id,
        data: { ...base, leaseId: id, expiresAt, claims: decidingClaims(payload), decisions },
      },
      clock,
    );
    return id;
  });
  return { leaseId, jobId, runId: payload.run_id, secrets, scopes: grantedScopes, issuedAt, expiresAt };
}

/** The `kid` a compact JWS claims in its header, unverified; undefined when there is none. */
function unverifiedKid(token: string): string | undefined {
  if (typeof token !== "string") return undefined;
  const dot = token.indexOf(".");
  if (dot <= 0) return undefined;
  try {
    const header = JSON.parse(Buffer.from(token.slice(0, dot), "base64url").toString("utf8")) as unknown;
    const kid = (header as { kid?: unknown } | null)?.kid;
    return typeof kid === "string" ? kid : undefined;
  } catch {
    return undefined;
  }
}

function unauthenticated(message: string): AirlockError {
  return new AirlockError("UNAUTHENTICATED", message, {
    hint: "present a current ID token of a running job, minted for the secret broker's audience",
  });
}

function parseNames(raw: readonly string[], max: number): string[] {
  if (!Array.isArray(raw) || raw.length === 0) {
    throw new AirlockError("REQUEST_INVALID", "name at least one secret to request");
  }
  if (raw.length > max) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `at most ${max} secrets may be requested at once, got ${raw.length}`,
    );
  }
  return [
    ...new Set(
      raw.map((n, i) => {
        try {
          return normalizeSecretName(n);
        } catch (e) {
          const err = e as AirlockError;
          throw new AirlockError("REQUEST_INVALID", `requested secret #${i + 1}: ${err.message}`, {
            ...(err.hint ? { hint: err.hint } : {}),
          });
        }
      }),
    ),
  ];
}

function decisionOf(name: string, s: SealedSecret, d: Decision): SecretDecision {
  return {
    name,
    scope: scopeKey(s.scope),
    version: s.version,
    allowed: d.allowed,
    ...(d.allowed ? {} : { reason: "policy" as const }),
    policies: d.reasons,
    ...(d.errors.length > 0 ? { errors: d.errors } : {}),
  };
}

function refusalText(d: SecretDecision): string {
  if (d.reason === "not_found") return `${d.name} not found`;
  const by = d.policies.length > 0 ? `policy ${d.policies.join(", ")}` : "no policy permitting it";
  return `${d.name} (${d.scope}) denied by ${by}`;
}

/** The owner claim must be the repository's owner, so org lookups and org policies agree. */
function claimsConsistent(p: IdTokenPayload): boolean {
  return (
    typeof p.repository === "string" &&
    /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\/[A-Za-z0-9._-]{1,100}$/.test(p.repository) &&
    p.repository_owner === orgOf(p.repository) &&
    typeof p.run_id === "string" &&
    p.run_id !== "" &&
    (p.environment === undefined || typeof p.environment === "string")
  );
}

/** The claims a decision turns on, for the audit record. Not the token, not its signature. */
function decidingClaims(p: IdTokenPayload): Record<string, unknown> {
  return {
    sub: p.sub,
    repository: p.repository,
    repository_owner: p.repository_owner,
    ref: p.ref,
    ref_type: p.ref_type,
    ref_protected: p.ref_protected,
    environment: p.environment ?? null,
    event_name: p.event_name,
    actor: p.actor,
    workflow_ref: p.workflow_ref,
    run_id: p.run_id,
    run_attempt: p.run_attempt,
    jti: p.jti,
    aud: p.aud,
  };
}

/**
 * What was asked, for the audit record: valid names only. Anything else is recorded as
 * `<invalid>`, since a caller who pastes a value where a name belongs must not get it logged.
 */
function requestedForAudit(raw: unknown): string[] {
  if (!Array.isArray(raw)) return [];
  return raw.slice(0, defaultMaxSecrets).map((n) => {
    try {
      return normalizeSecretName(n as string);
    } catch {
      return "<invalid>";
    }
  });
}
