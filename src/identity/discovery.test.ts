import { describe, expect, it } from "vitest";
import { claimsSupported } from "./claims.js";
import { discoveryDocument, normalizeIssuer } from "./discovery.js";

describe("discovery", () => {
  it("matches the shape of GitHub's document for the configured issuer", () => {
    expect(discoveryDocument("https://airlock.example.com/oidc/")).toEqual({
      issuer: "https://airlock.example.com/oidc",
      jwks_uri: "https://airlock.example.com/oidc/.well-known/jwks",
      subject_types_supported: ["public", "pairwise"],
      response_types_supported: ["id_token"],
      claims_supported: [...claimsSupported],
      id_token_signing_alg_values_supported: ["ES256", "EdDSA"],
      scopes_supported: ["openid"],
    });
  });

  it("advertises every claim the issue lists", () => {
    const wanted =
      "iss aud sub jti iat nbf exp repository repository_owner repository_id ref ref_type ref_protected sha workflow workflow_ref job_workflow_ref run_id run_number run_attempt actor event_name environment runner_environment head_ref base_ref".split(
        " ",
      );
    for (const c of wanted) expect(claimsSupported).toContain(c);
  });

  it("accepts https, and http only on loopback; refuses queries, fragments, credentials", () => {
    expect(normalizeIssuer("https://a.example")).toBe("https://a.example");
    expect(normalizeIssuer("http://127.0.0.1:8080/")).toBe("http://127.0.0.1:8080");
    expect(normalizeIssuer("http://localhost:1")).toBe("http://localhost:1");
    expect(() => normalizeIssuer("http://a.example")).toThrow(/https/);
    expect(() => normalizeIssuer("https://a.example/?x=1")).toThrow(/query/);
    expect(() => normalizeIssuer("https://u:p@a.example")).toThrow(/credentials/);
    expect(() => normalizeIssuer("not a url")).toThrow(/not a URL/);
  });
});
