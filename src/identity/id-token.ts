import { randomBytes } from "node:crypto";
import {
  createLocalJWKSet,
  decodeProtectedHeader,
  errors,
  type JSONWebKeySet,
  type JWTPayload,
  jwtVerify,
  SignJWT,
} from "jose";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import type { JobClaims } from "./claims.js";
import type { RandomSource } from "./master-key.js";
import { type ActiveSigningKey, signingAlgs } from "./signing-keys.js";

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
      /** Why, in jose's words or ours; never contains the token. */
      detail: string;
      kid?: string;
      jti?: string;
    };

const resolvers = new WeakMap<JSONWebKeySet, ReturnType<typeof createLocalJWKSet>>();

function resolverFor(keys: JSONWebKeySet): ReturnType<typeof createLocalJWKSet> {
  let r = resolvers.get(keys);
  if (!r) {
    r = createLocalJWKSet(keys);
    resolvers.set(keys, r);
  }
  return r;
}

/**
 * Verifies an ID token: signature by a published key (ES256 or EdDSA only, so alg=none and
 * HS256-keyed-with-the-public-key are refused before any key is touched), typ JWT, issuer,
 * audience, exp/nbf against the injected clock, the registered claims present, then revocation.
 * Never throws for a bad token: the reason comes back typed, for the caller to audit.
 */
export async function verifyIdToken(token: string, opts: VerifyIdTokenOptions): Promise<IdTokenVerification> {
  if (typeof token !== "string" || token.length === 0 || token.length > maxTokenLength) {
    return { ok: false, reason: "malformed", detail: "not a compact JWS of a plausible size" };
  }
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(token);
    kid = typeof header.kid === "string" ? header.kid.slice(0, 128) : undefined;
  } catch {
    return { ok: false, reason: "malformed", detail: "the protected header does not decode" };
  }
  const withKid = kid === undefined ? {} : { kid };
  let payload: IdTokenPayload;
  try {
    const result = await jwtVerify(token, resolverFor(opts.keys), {
      issuer: opts.issuer,
      audience: typeof opts.audience === "string" ? opts.audience : [...opts.audience],
      algorithms: [...signingAlgs],
      typ: "JWT",
      currentDate: (opts.clock ?? systemClock).now(),
      clockTolerance: opts.clockToleranceSeconds ?? defaultClockToleranceSeconds,
      requiredClaims: ["iss", "aud", "sub", "jti", "iat", "nbf", "exp"],
    });
    payload = result.payload as unknown as IdTokenPayload;
  } catch (e) {
    return { ok: false, ...rejection(e), ...withKid };
  }
  if (typeof payload.jti !== "string" || payload.jti === "") {
    return { ok: false, reason: "malformed", detail: "jti is not a string", ...withKid };
  }
  if (opts.isRevoked && (await opts.isRevoked(payload.jti))) {
    return { ok: false, reason: "revoked", detail: "the token was revoked", ...withKid, jti: payload.jti };
  }
  return { ok: true, payload, kid: kid as string };
}

function rejection(e: unknown): { reason: IdTokenRejection; detail: string } {
  if (!(e instanceof errors.JOSEError)) {
    return { reason: "malformed", detail: "the token could not be processed" };
  }
  const detail = e.message;
  switch (e.code) {
    case errors.JWTExpired.code:
      return { reason: "expired", detail };
    case errors.JWTClaimValidationFailed.code: {
      const { claim, reason } = e as errors.JWTClaimValidationFailed;
      if (claim === "nbf" && reason === "check_failed") return { reason: "not_yet_valid", detail };
      if (claim === "iat" && reason === "check_failed") return { reason: "not_yet_valid", detail };
      if (claim === "aud" && reason === "check_failed") return { reason: "audience", detail };
      if (claim === "iss" && reason === "check_failed") return { reason: "issuer", detail };
      return { reason: "malformed", detail };
    }
    case errors.JOSEAlgNotAllowed.code:
    case errors.JOSENotSupported.code:
      return { reason: "algorithm", detail };
    case errors.JWSSignatureVerificationFailed.code:
      return { reason: "signature", detail };
    case errors.JWKSNoMatchingKey.code:
    case errors.JWKSMultipleMatchingKeys.code:
      return { reason: "unknown_kid", detail };
    default:
      return { reason: "malformed", detail };
  }
}
