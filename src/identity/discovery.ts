import { AirlockError } from "../errors.js";
import { claimsSupported } from "./claims.js";
import { signingAlgs } from "./signing-keys.js";

export const discoveryPath = "/.well-known/openid-configuration";
export const jwksPath = "/.well-known/jwks";

/** The OpenID Provider metadata relying parties read, in the shape GitHub's issuer publishes. */
export interface DiscoveryDocument {
  issuer: string;
  jwks_uri: string;
  subject_types_supported: string[];
  response_types_supported: string[];
  claims_supported: string[];
  id_token_signing_alg_values_supported: string[];
  scopes_supported: string[];
}

/**
 * Validates and normalizes a configured issuer URL: https (http only for loopback, for tests and
 * the embedded mode), no query, fragment or credentials, no trailing slash. `iss` must equal it
 * byte for byte and relying parties fetch `<issuer>/.well-known/openid-configuration`.
 */
export function normalizeIssuer(raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new AirlockError("CONFIG_INVALID", `the OIDC issuer URL is not a URL: ${raw}`);
  }
  const loopback = u.hostname === "localhost" || u.hostname === "[::1]" || /^127\./.test(u.hostname);
  if (u.protocol !== "https:" && !(u.protocol === "http:" && loopback)) {
    throw new AirlockError("CONFIG_INVALID", `the OIDC issuer URL must be https: ${raw}`, {
      hint: "cloud providers fetch the discovery document over https; http is allowed only for loopback",
    });
  }
  if (u.search || u.hash || u.username || u.password) {
    throw new AirlockError(
      "CONFIG_INVALID",
      "the OIDC issuer URL may not carry a query, fragment or credentials",
    );
  }
  return `${u.origin}${u.pathname.replace(/\/+$/, "")}`;
}

export function discoveryDocument(issuer: string, algs: readonly string[] = signingAlgs): DiscoveryDocument {
  const iss = normalizeIssuer(issuer);
  return {
    issuer: iss,
    jwks_uri: `${iss}${jwksPath}`,
    subject_types_supported: ["public", "pairwise"],
    response_types_supported: ["id_token"],
    claims_supported: [...claimsSupported],
    id_token_signing_alg_values_supported: [...algs],
    scopes_supported: ["openid"],
  };
}
