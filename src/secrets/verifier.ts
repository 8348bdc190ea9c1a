import type { JSONWebKeySet } from "jose";
import type { Clock } from "../clock.js";
import { type IdTokenVerification, verifyIdToken } from "../identity/id-token.js";

/**
 * How the broker checks a presented ID token. Injected, so the broker does not depend on how the
 * server wires signing keys; identity's checkIdToken (which also audits rejections) fits as is:
 * `(token, aud) => checkIdToken({ db, issuer, keys }, token, aud)`.
 */
export type TokenVerifier = (
  token: string,
  audience: string | readonly string[],
) => Promise<IdTokenVerification>;

/**
 * A verifier over a key set (the issuer's SigningKeys.jwks(), or a fixed JWKS in tests), with the
 * issuer, clock and revocation check it needs. Pure apart from what `keys` and `isRevoked` do.
 */
export function jwksVerifier(opts: {
  issuer: string;
  keys: JSONWebKeySet | (() => Promise<JSONWebKeySet>);
  isRevoked?: (jti: string) => boolean | Promise<boolean>;
  clock?: Clock;
}): TokenVerifier {
  return async (token, audience) => {
    const keys = typeof opts.keys === "function" ? await opts.keys() : opts.keys;
    return verifyIdToken(token, {
      issuer: opts.issuer,
      audience,
      keys,
      ...(opts.clock ? { clock: opts.clock } : {}),
      ...(opts.isRevoked ? { isRevoked: opts.isRevoked } : {}),
    });
  };
}
