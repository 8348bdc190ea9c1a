// The independent check: our tokens verified by a second JWT implementation (jsonwebtoken, with
// jwk-to-pem for the key) that knows only what a relying party knows: the issuer URL, from which
// it fetches the discovery document and the JWKS over HTTP. None of our verification code runs.
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import jwt from "jsonwebtoken";
import jwkToPem from "jwk-to-pem";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../store/database.js";
import { jobClaims } from "./claims.js";
import { discoveryDocument, discoveryPath, jwksPath } from "./discovery.js";
import { mintIdToken } from "./id-token.js";
import { SigningKeys } from "./signing-keys.js";
import { identityDb, pushInput, testKek } from "./test-support.js";

let db: Db;
let keys: SigningKeys;
let server: Server;
let issuer: string;

beforeAll(async () => {
  db = await identityDb();
  keys = new SigningKeys(db, { kek: testKek() });
  await keys.ensureActive();
  server = createServer((req, res) => {
    const send = (body: unknown) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (req.url === discoveryPath) return send(discoveryDocument(issuer));
    if (req.url === jwksPath) {
      keys.jwks().then(send, () => res.writeHead(500).end());
      return;
    }
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
  await db.destroy();
});

interface Jwk {
  kid: string;
  kty: string;
  crv: string;
  x: string;
  y: string;
  alg: string;
}

/** What a relying party does: discovery → jwks_uri → key by kid → verify with its own library. */
async function relyingPartyVerify(token: string, audience: string): Promise<jwt.JwtPayload> {
  const discovery = (await (await fetch(`${issuer}/.well-known/openid-configuration`)).json()) as {
    issuer: string;
    jwks_uri: string;
    id_token_signing_alg_values_supported: string[];
  };
  expect(discovery.issuer).toBe(issuer);
  const { keys: published } = (await (await fetch(discovery.jwks_uri)).json()) as { keys: Jwk[] };
  const header = jwt.decode(token, { complete: true })?.header;
  const jwk = published.find((k) => k.kid === header?.kid);
  if (!jwk) throw new Error(`no published key ${header?.kid}`);
  const pem = jwkToPem({ kty: "EC", crv: "P-256", x: jwk.x, y: jwk.y });
  return jwt.verify(token, pem, {
    algorithms: discovery.id_token_signing_alg_values_supported.filter(
      (a) => a === "ES256",
    ) as jwt.Algorithm[],
    audience,
    issuer: discovery.issuer,
  }) as jwt.JwtPayload;
}

describe("independent verification over HTTP", () => {
  it("the discovery document has what a relying party reads", async () => {
    const res = await fetch(`${issuer}/.well-known/openid-configuration`);
    expect(res.status).toBe(200);
    const doc = (await res.json()) as Record<string, unknown>;
    expect(doc).toEqual({
      issuer,
      jwks_uri: `${issuer}/.well-known/jwks`,
      subject_types_supported: ["public", "pairwise"],
      response_types_supported: ["id_token"],
      claims_supported: expect.arrayContaining([
        "sub",
        "aud",
        "iss",
        "exp",
        "iat",
        "nbf",
        "jti",
        "repository",
      ]),
      id_token_signing_alg_values_supported: ["ES256", "EdDSA"],
      scopes_supported: ["openid"],
    });
  });

  it("a minted token verifies with jsonwebtoken against the fetched JWKS, and every claim is advertised", async () => {
    const { token, payload } = await mintIdToken(
      await keys.activeKey(),
      jobClaims(pushInput({ environment: "prod" })),
      {
        issuer,
        audience: "sts.amazonaws.com",
      },
    );
    const verified = await relyingPartyVerify(token, "sts.amazonaws.com");
    expect(verified).toEqual(payload);
    expect(verified.sub).toBe("repo:octo-org/octo-repo:environment:prod");
    const doc = (await (await fetch(`${issuer}${discoveryPath}`)).json()) as { claims_supported: string[] };
    for (const claim of Object.keys(verified)) expect(doc.claims_supported).toContain(claim);
  });

  it("the independent verifier rejects what it should (so the check above means something)", async () => {
    const { token } = await mintIdToken(await keys.activeKey(), jobClaims(pushInput()), {
      issuer,
      audience: "a",
    });
    await expect(relyingPartyVerify(token, "b")).rejects.toThrow(/audience/);
    const [h, p, s] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    claims.sub = "repo:octo-org/other:ref:refs/heads/main";
    const tampered = `${h}.${Buffer.from(JSON.stringify(claims)).toString("base64url")}.${s}`;
    await expect(relyingPartyVerify(tampered, "a")).rejects.toThrow(/signature/);
  });

  it("after a rotation, tokens of the old and the new key both verify from the published JWKS", async () => {
    const oldToken = (
      await mintIdToken(await keys.activeKey(), jobClaims(pushInput()), { issuer, audience: "a" })
    ).token;
    await keys.rotate();
    const newToken = (
      await mintIdToken(await keys.activeKey(), jobClaims(pushInput()), { issuer, audience: "a" })
    ).token;
    expect(jwt.decode(oldToken, { complete: true })?.header.kid).not.toBe(
      jwt.decode(newToken, { complete: true })?.header.kid,
    );
    await expect(relyingPartyVerify(oldToken, "a")).resolves.toMatchObject({ aud: "a" });
    await expect(relyingPartyVerify(newToken, "a")).resolves.toMatchObject({ aud: "a" });
  });
});
