import { createPublicKey, randomBytes } from "node:crypto";
import { createVerifier, TOKEN_ERROR_CODES, TokenError } from "fast-jwt";
import { decodeProtectedHeader, type JSONWebKeySet, type JWK, type JWTPayload, SignJWT } from "jose";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import type { JobClaims } from "./claims.js";
import type { RandomSource } from "./master-key.js";
import { type ActiveSigningKey, type SigningAlg, signingAlgs } from "./signing-keys.js";

export const defaultIdTokenLifetimeSeconds = 300;
/** Verifiers accept this much clock skew on exp/nbf; small, since issuer and verifier share a host or NTP. */
export const defaultClockToleranceSeconds = 5;
/** Anything longer is not one of ours; refusing before parsing bounds the work an attacker can cause. */
const maxTokenLength = 16 * 1024;

export interface MintOptions {
  issuer: string;
  audience: string;
  lifetimeSeconds?: number;
  clock?: Clock;
  random?: RandomSource;
}

export interface IdTokenPayload extends JobClaims {
  iss: string;
  aud: string;
  jti: string;
  iat: number;
  nbf: number;
  exp: number;
}

export interface MintedIdToken {
  /** Compact JWS, header {alg, kid, typ: "JWT"}. */
  token: string;
  payload: IdTokenPayload;
  kid: string;
}

/** Signs a job's claims as an ID token. Pure apart from the injected clock and random source. */
export async function mintIdToken(
  key: ActiveSigningKey,
  claims: JobClaims,
  opts: MintOptions,
): Promise<MintedIdToken> {
  const lifetime = opts.lifetimeSeconds ?? defaultIdTokenLifetimeSeconds;
  if (!Number.isInteger(lifetime) || lifetime <= 0 || lifetime > key.maxTokenLifetimeSeconds) {
    // A longer token could outlive its key's place in the JWKS and stop verifying mid-life.
    throw new AirlockError(
      "REQUEST_INVALID",
      `an ID token lifetime is a whole number of seconds from 1 to ${key.maxTokenLifetimeSeconds}`,
    );
  }
  checkAudience(opts.audience);
  const iat = Math.floor((opts.clock ?? systemClock).now().getTime() / 1000);
  const payload: IdTokenPayload = {
    ...claims,
    iss: opts.issuer,
    aud: opts.audience,
    jti: uuidFrom((opts.random ?? randomBytes)(16)),
    iat,
    nbf: iat,
    exp: iat + lifetime,
  };
  const token = await new SignJWT(payload as unknown as JWTPayload)
    .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: "JWT" })
    .sign(key.privateKey);
  return { token, payload, kid: key.kid };
}

/** The audience a job asked for: one printable, bounded string (GitHub takes one, not a list). */
export function checkAudience(audience: string): void {
  if (typeof audience !== "string" || !/^[\x21-\x7e]{1,256}$/.test(audience)) {
    throw new AirlockError(
      "REQUEST_INVALID",
      "audience must be 1-256 printable ASCII characters without spaces",
    );
  }
}

/** A version-4 UUID from 16 random bytes (jti, as GitHub's tokens carry). */
function uuidFrom(bytes: Buffer): string {
  const b = Buffer.from(bytes);
  b[6] = ((b[6] as number) & 0x0f) | 0x40;
  b[8] = ((b[8] as number) & 0x3f) | 0x80;
  const h = b.toString("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export const idTokenRejections = [
  "expired",
  "not_yet_valid",
  "audience",
  "issuer",
  "algorithm",
  "signature",
  "unknown_kid",
  "revoked",
  "malformed",
] as const;
export type IdTokenRejection = (typeof idTokenRejections)[number];

export interface VerifyIdTokenOptions {
  issuer: string;
  audience: string | readonly string[];
  /** The issuer's published keys (SigningKeys.jwks(), or a JWKS fetched from the issuer). */
  keys: JSONWebKeySet;
  clock?: Clock;
  /** Consulted only for tokens that pass every other check. */
  isRevoked?: (jti: string) => boolean | Promise<boolean>;
  clockToleranceSeconds?: number;
}

export type IdTokenVerification =
  | { ok: true; payload: IdTokenPayload; kid: string }
  | {
      ok: false;
      reason: IdTokenRejection;
      /** Why, in fast-jwt's words or ours; never contains the token. */
      detail: string;
      kid?: string;
      jti?: string;
    };

/** Claims every ID token carries; a token without one of them is malformed, not merely unusual. */
const requiredClaims = ["iss", "aud", "sub", "jti", "iat", "nbf", "exp"];

/**
 * A published key ready to verify: one fast-jwt verifier per key, created on first use. The
 * verifier checks the JWS — compact form, base64url, the algorithm (this key's one only), the
 * signature with node:crypto on the calling thread, typ JWT, crit, and the required claims'
 * presence. It has no clock of ours (fast-jwt fixes `clockTimestamp` when the verifier is made),
 * so the time and the per-call issuer and audience are checked in checkClaims below.
 */
interface PublishedKey {
  jwk: JWK;
  kid: string | undefined;
  alg: SigningAlg;
  verifier?: (token: string) => Record<string, unknown>;
}

/** A snapshot of a key set, per object (SigningKeys.jwks() returns the same object while unchanged). */
const keyIndexes = new WeakMap<JSONWebKeySet, PublishedKey[]>();

function keyIndex(keys: JSONWebKeySet): PublishedKey[] {
  let index = keyIndexes.get(keys);
  if (!index) {
    index = [];
    for (const jwk of Array.isArray(keys?.keys) ? keys.keys : []) {
      const alg = keyAlg(jwk);
      // A key of another type, or one published for encryption only, never verifies a token.
      if (!alg) continue;
      if (jwk.use !== undefined && jwk.use !== "sig") continue;
      if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes("verify")))
        continue;
      if (jwk.alg !== undefined && jwk.alg !== alg) continue;
      index.push({ jwk: structuredClone(jwk), kid: typeof jwk.kid === "string" ? jwk.kid : undefined, alg });
    }
    keyIndexes.set(keys, index);
  }
  return index;
}

/** The one algorithm a public JWK can verify here, by its key type and curve; undefined if none. */
function keyAlg(jwk: JWK): SigningAlg | undefined {
  if (jwk?.kty === "EC" && jwk.crv === "P-256") return "ES256";
  if (jwk?.kty === "OKP" && (jwk.crv === "Ed25519" || jwk.crv === "Ed448")) return "EdDSA";
  return undefined;
}

function verifierFor(key: PublishedKey): (token: string) => Record<string, unknown> {
  if (!key.verifier) {
    const { kty, crv, x, y } = key.jwk;
    const pem = createPublicKey({
      key: { kty, crv, x, ...(y === undefined ? {} : { y }) } as never,
      format: "jwk",
    })
      .export({ type: "spki", format: "pem" })
      .toString();
    key.verifier = createVerifier({
      key: pem,
      algorithms: [key.alg],
      checkTyp: "JWT",
      requiredClaims,
      // Checked against the injected clock in checkClaims; fast-jwt's clock is fixed per verifier.
      ignoreExpiration: true,
      ignoreNotBefore: true,
    });
  }
  return key.verifier;
}

/**
 * Verifies an ID token: signature by a published key (ES256 or EdDSA only, so alg=none and
 * HS256-keyed-with-the-public-key are refused before any key is touched), typ JWT, issuer,
 * audience, exp/nbf against the injected clock, the registered claims present, then revocation.
 * Never throws for a bad token: the reason comes back typed, for the caller to audit.
 *
 * Synchronous node:crypto underneath (fast-jwt), not WebCrypto: a verification is ~70 µs of CPU
 * and a hop to libuv's thread pool and back per token cost more than the work itself.
 */
export async function verifyIdToken(token: string, opts: VerifyIdTokenOptions): Promise<IdTokenVerification> {
  if (typeof token !== "string" || token.length === 0 || token.length > maxTokenLength) {
    return { ok: false, reason: "malformed", detail: "not a compact JWS of a plausible size" };
  }
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch {
    return { ok: false, reason: "malformed", detail: "the protected header does not decode" };
  }
  const kid = typeof header.kid === "string" ? header.kid.slice(0, 128) : undefined;
  const withKid = kid === undefined ? {} : { kid };
  const alg = header.alg;
  if (typeof alg !== "string" || !(signingAlgs as readonly string[]).includes(alg)) {
    return {
      ok: false,
      reason: "algorithm",
      detail: `alg ${JSON.stringify(alg)?.slice(0, 40)} is not accepted`,
      ...withKid,
    };
  }
  // Key selection as a relying party's local JWKS does it: the kid (when the header has one) and a
  // key type that can carry this alg; exactly one candidate, or the token names no key of ours.
  const candidates = keyIndex(opts.keys).filter(
    (k) => k.alg === alg && (header.kid === undefined || k.kid === header.kid),
  );
  if (candidates.length !== 1) {
    const detail =
      candidates.length === 0
        ? `no published ${alg} key has this kid`
        : "several published keys match; the token must name one by kid";
    return { ok: false, reason: "unknown_kid", detail, ...withKid };
  }
  let payload: IdTokenPayload;
  try {
    payload = verifierFor(candidates[0] as PublishedKey)(token) as unknown as IdTokenPayload;
  } catch (e) {
    return { ok: false, ...rejection(e), ...withKid };
  }
  const claims = checkClaims(payload, opts);
  if (claims) return { ok: false, ...claims, ...withKid };
  if (opts.isRevoked && (await opts.isRevoked(payload.jti))) {
    return { ok: false, reason: "revoked", detail: "the token was revoked", ...withKid, jti: payload.jti };
  }
  return { ok: true, payload, kid: kid as string };
}

/**
 * The claims of a token whose signature held, in the order and with the arithmetic of jose's
 * jwtVerify (which this replaced): iss, aud, then nbf and exp in whole seconds with the tolerance.
 */
function checkClaims(
  p: IdTokenPayload,
  opts: VerifyIdTokenOptions,
): { reason: IdTokenRejection; detail: string } | undefined {
  if (p.iss !== opts.issuer) return { reason: "issuer", detail: 'unexpected "iss" claim value' };
  const expected = typeof opts.audience === "string" ? [opts.audience] : opts.audience;
  const aud = p.aud as unknown;
  const audOk =
    typeof aud === "string"
      ? expected.includes(aud)
      : Array.isArray(aud) && aud.some((a) => typeof a === "string" && expected.includes(a));
  if (!audOk) return { reason: "audience", detail: 'unexpected "aud" claim value' };
  for (const claim of ["iat", "nbf", "exp"] as const) {
    if (typeof p[claim] !== "number" || !Number.isFinite(p[claim])) {
      return { reason: "malformed", detail: `"${claim}" claim must be a number` };
    }
  }
  for (const claim of ["sub", "jti"] as const) {
    if (typeof p[claim] !== "string" || p[claim] === "") {
      return { reason: "malformed", detail: `"${claim}" claim must be a non-empty string` };
    }
  }
  const tolerance = opts.clockToleranceSeconds ?? defaultClockToleranceSeconds;
  const now = Math.floor((opts.clock ?? systemClock).now().getTime() / 1000);
  if (p.nbf > now + tolerance)
    return { reason: "not_yet_valid", detail: '"nbf" claim timestamp check failed' };
  if (p.exp <= now - tolerance) return { reason: "expired", detail: '"exp" claim timestamp check failed' };
  return undefined;
}

/** fast-jwt's error codes, as our reasons. */
function rejection(e: unknown): { reason: IdTokenRejection; detail: string } {
  if (!(e instanceof TokenError)) {
    return { reason: "malformed", detail: "the token could not be processed" };
  }
  const detail = e.message;
  switch (e.code) {
    case TOKEN_ERROR_CODES.invalidAlgorithm:
      return { reason: "algorithm", detail };
    case TOKEN_ERROR_CODES.invalidSignature:
    case TOKEN_ERROR_CODES.missingSignature:
    case TOKEN_ERROR_CODES.verifyError:
      return { reason: "signature", detail };
    case TOKEN_ERROR_CODES.invalidKey:
      return { reason: "unknown_kid", detail };
    default:
      // malformed, invalidPayload, invalidType (typ), missingRequiredClaim, invalidCritHeader, …
      return { reason: "malformed", detail };
  }
}
