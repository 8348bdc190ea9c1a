import { createHmac, createPublicKey, sign as cryptoSign, generateKeyPairSync, KeyObject } from "node:crypto";
import { exportJWK, generateKeyPair, type JSONWebKeySet, SignJWT } from "jose";
import jwt from "jsonwebtoken";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Db } from "../store/database.js";
import { jobClaims } from "./claims.js";
import { type IdTokenVerification, mintIdToken, verifyIdToken } from "./id-token.js";
import { type ActiveSigningKey, SigningKeys } from "./signing-keys.js";
import { frozenClock, identityDb, pushInput, testKek } from "./test-support.js";

const issuer = "https://airlock.example.test";
const audience = "sts.amazonaws.com";
const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

let db: Db;
let keys: SigningKeys;
let key: ActiveSigningKey;
let jwks: JSONWebKeySet;
const clock = frozenClock();

beforeAll(async () => {
  db = await identityDb();
  keys = new SigningKeys(db, { kek: testKek(), clock });
  await keys.ensureActive();
  key = await keys.activeKey();
  jwks = await keys.jwks();
});
afterAll(async () => {
  await db.destroy();
});

async function mint(overrides: { lifetimeSeconds?: number; audience?: string } = {}) {
  return mintIdToken(key, jobClaims(pushInput({ environment: "prod" })), {
    issuer,
    audience: overrides.audience ?? audience,
    lifetimeSeconds: overrides.lifetimeSeconds,
    clock,
  });
}

function verify(token: string, over: Partial<Parameters<typeof verifyIdToken>[1]> = {}) {
  return verifyIdToken(token, { issuer, audience, keys: jwks, clock, ...over });
}

function rejected(v: IdTokenVerification) {
  if (v.ok) throw new Error("expected a rejection");
  return v.reason;
}

describe("mint and verify", () => {
  it("round-trips with a frozen clock", async () => {
    const { token, payload, kid } = await mint();
    const [h] = token.split(".");
    expect(JSON.parse(Buffer.from(h as string, "base64url").toString())).toEqual({
      alg: "ES256",
      kid,
      typ: "JWT",
    });
    const iat = Math.floor(clock.now().getTime() / 1000);
    expect(payload).toMatchObject({ iss: issuer, aud: audience, iat, nbf: iat, exp: iat + 300 });
    expect(payload.jti).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    const v = await verify(token);
    expect(v.ok).toBe(true);
    if (v.ok) {
      expect(v.payload.sub).toBe("repo:octo-org/octo-repo:environment:prod");
      expect(v.kid).toBe(kid);
    }
  });

  it("uses the injected random source for jti", async () => {
    const a = await mintIdToken(key, jobClaims(pushInput()), {
      issuer,
      audience,
      clock,
      random: (n) => Buffer.alloc(n, 7),
    });
    expect(a.payload.jti).toBe("07070707-0707-4707-8707-070707070707");
  });

  it("refuses a lifetime longer than its key's publication allows", async () => {
    await expect(mint({ lifetimeSeconds: key.maxTokenLifetimeSeconds + 1 })).rejects.toThrow(/lifetime/);
    await expect(mint({ lifetimeSeconds: 0 })).rejects.toThrow(/lifetime/);
  });

  it("refuses a bad audience", async () => {
    await expect(mint({ audience: "" })).rejects.toThrow(/audience/);
    await expect(mint({ audience: "a b" })).rejects.toThrow(/audience/);
  });

  it("accepts any of several expected audiences", async () => {
    const { token } = await mint();
    expect((await verify(token, { audience: ["x", audience] })).ok).toBe(true);
  });
});

describe("attacks and bad input are rejected with their reason", () => {
  it("expired (beyond the clock tolerance)", async () => {
    const { token } = await mint();
    const later = frozenClock(new Date(clock.now().getTime() + 300_000 + 4_000).toISOString());
    expect((await verify(token, { clock: later })).ok).toBe(true);
    later.advance(2);
    expect(rejected(await verify(token, { clock: later }))).toBe("expired");
  });

  it("not yet valid (nbf in the future)", async () => {
    const future = frozenClock(new Date(clock.now().getTime() + 60_000).toISOString());
    const { token } = await mintIdToken(key, jobClaims(pushInput()), { issuer, audience, clock: future });
    expect(rejected(await verify(token))).toBe("not_yet_valid");
  });

  it("wrong audience", async () => {
    const { token } = await mint();
    expect(rejected(await verify(token, { audience: "api://AzureADTokenExchange" }))).toBe("audience");
  });

  it("wrong issuer", async () => {
    const { token } = await mint();
    expect(rejected(await verify(token, { issuer: "https://token.actions.githubusercontent.com" }))).toBe(
      "issuer",
    );
  });

  it("alg=none", async () => {
    const { token } = await mint();
    const [, p] = token.split(".");
    const none = `${b64({ alg: "none", typ: "JWT", kid: key.kid })}.${p}.`;
    expect(rejected(await verify(none))).toBe("algorithm");
  });

  it("HS256 keyed with the public key (JWK JSON, raw x||y, or PEM)", async () => {
    const { token } = await mint();
    const [, p] = token.split(".");
    const pub = jwks.keys[0] as Record<string, string>;
    const pem = createPublicKey({ key: pub as never, format: "jwk" }).export({ type: "spki", format: "pem" });
    const secrets = [
      Buffer.from(JSON.stringify(pub)),
      Buffer.concat([Buffer.from(pub.x as string, "base64url"), Buffer.from(pub.y as string, "base64url")]),
      Buffer.from(pem as string),
    ];
    for (const secret of secrets) {
      const input = `${b64({ alg: "HS256", typ: "JWT", kid: key.kid })}.${p}`;
      const forged = `${input}.${createHmac("sha256", secret).update(input).digest("base64url")}`;
      expect(rejected(await verify(forged))).toBe("algorithm");
    }
  });

  it("tampered payload", async () => {
    const { token } = await mint();
    const [h, p, s] = token.split(".") as [string, string, string];
    const claims = JSON.parse(Buffer.from(p, "base64url").toString());
    claims.sub = "repo:octo-org/octo-repo:environment:production";
    expect(rejected(await verify(`${h}.${b64(claims)}.${s}`))).toBe("signature");
    // A flipped bit in the signature too.
    const bad = Buffer.from(s, "base64url");
    bad[5] = (bad[5] as number) ^ 1;
    expect(rejected(await verify(`${h}.${p}.${bad.toString("base64url")}`))).toBe("signature");
  });

  it("signed by someone else's key under our kid", async () => {
    const other = await generateKeyPair("ES256");
    const { payload } = await mint();
    const forged = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: "ES256", kid: key.kid, typ: "JWT" })
      .sign(other.privateKey);
    expect(rejected(await verify(forged))).toBe("signature");
  });

  it("unknown kid", async () => {
    const other = await generateKeyPair("ES256");
    const { payload } = await mint();
    const forged = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: "ES256", kid: "not-one-of-ours", typ: "JWT" })
      .sign(other.privateKey);
    const v = await verify(forged);
    expect(rejected(v)).toBe("unknown_kid");
    if (!v.ok) expect(v.kid).toBe("not-one-of-ours");
  });

  it("a key of another algorithm under our kid (EdDSA header on an ES256 key)", async () => {
    const other = await generateKeyPair("EdDSA");
    const { payload } = await mint();
    const forged = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: "JWT" })
      .sign(other.privateKey);
    expect(rejected(await verify(forged))).toBe("unknown_kid");
  });

  it("revoked jti", async () => {
    const { token, payload } = await mint();
    const v = await verify(token, { isRevoked: (jti) => jti === payload.jti });
    expect(rejected(v)).toBe("revoked");
    if (!v.ok) expect(v.jti).toBe(payload.jti);
  });

  it("malformed: garbage, wrong typ, missing claims, oversize", async () => {
    expect(rejected(await verify("not.a.jwt"))).toBe("malformed");
    expect(rejected(await verify(""))).toBe("malformed");
    expect(rejected(await verify("x".repeat(20_000)))).toBe("malformed");
    const { payload } = await mint();
    const pk = await keys.activeKey();
    const wrongTyp = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: "ES256", kid: pk.kid, typ: "at+jwt" })
      .sign(pk.privateKey);
    expect(rejected(await verify(wrongTyp))).toBe("malformed");
    const { jti: _jti, ...noJti } = payload;
    const missing = await new SignJWT({ ...noJti })
      .setProtectedHeader({ alg: "ES256", kid: pk.kid, typ: "JWT" })
      .sign(pk.privateKey);
    expect(rejected(await verify(missing))).toBe("malformed");
  });

  it("never echoes the token in the rejection", async () => {
    const { token } = await mint();
    const v = await verify(token, { audience: "other" });
    expect(JSON.stringify(v)).not.toContain(token.split(".")[2]);
    expect(JSON.stringify(v)).not.toContain(token.split(".")[1]);
  });
});

describe("verification details the fast-jwt verifier is relied on for", () => {
  /** Signs any header and payload with the active key, bypassing mintIdToken's checks. */
  async function signed(header: Record<string, unknown>, payload: Record<string, unknown>) {
    const pk = await keys.activeKey();
    return new SignJWT(payload)
      .setProtectedHeader({ alg: "ES256", kid: pk.kid, typ: "JWT", ...header } as never)
      .sign(pk.privateKey);
  }

  it("accepts a typ spelled application/jwt or in another case, as jose did", async () => {
    const { payload } = await mint();
    for (const typ of ["jwt", "application/JWT"]) {
      expect((await verify(await signed({ typ }, { ...payload }))).ok).toBe(true);
    }
    const noTyp = await signed({ typ: undefined }, { ...payload });
    expect(rejected(await verify(noTyp))).toBe("malformed");
  });

  it("nbf and exp use the clock tolerance in whole seconds at both edges", async () => {
    const iat = Math.floor(clock.now().getTime() / 1000);
    const { payload } = await mint();
    const at = (nbf: number, exp: number) => signed({}, { ...payload, nbf, exp });
    expect((await verify(await at(iat + 5, iat + 300))).ok).toBe(true);
    expect(rejected(await verify(await at(iat + 6, iat + 300)))).toBe("not_yet_valid");
    expect((await verify(await at(iat, iat - 4))).ok).toBe(true);
    expect(rejected(await verify(await at(iat, iat - 5)))).toBe("expired");
    expect((await verify(await at(iat + 6, iat + 300), { clockToleranceSeconds: 10 })).ok).toBe(true);
  });

  it("claims of the wrong type are malformed, not trusted", async () => {
    const { payload } = await mint();
    for (const bad of [{ exp: "9999999999" }, { nbf: null }, { iat: "now" }, { sub: 7 }, { jti: "" }]) {
      expect(rejected(await verify(await signed({}, { ...payload, ...bad })))).toBe("malformed");
    }
    expect(rejected(await verify(await signed({}, { ...payload, iss: [issuer] })))).toBe("issuer");
  });

  it("an audience list matches when any member is expected, never by non-strings", async () => {
    const { payload } = await mint();
    expect((await verify(await signed({}, { ...payload, aud: ["x", audience] }))).ok).toBe(true);
    expect(rejected(await verify(await signed({}, { ...payload, aud: ["x", "y"] })))).toBe("audience");
    expect(rejected(await verify(await signed({}, { ...payload, aud: [[audience]] })))).toBe("audience");
    expect(rejected(await verify(await signed({}, { ...payload, aud: 1 })))).toBe("audience");
  });

  it("an unknown critical header is refused", async () => {
    const { payload } = await mint();
    // jose refuses to sign it, so sign the input by hand.
    const header = { alg: "ES256", kid: key.kid, typ: "JWT", crit: ["x-airlock"], "x-airlock": 1 };
    const input = `${b64(header)}.${b64(payload)}`;
    const priv = KeyObject.from((await keys.activeKey()).privateKey as never);
    const sig = cryptoSign("sha256", Buffer.from(input), { key: priv, dsaEncoding: "ieee-p1363" });
    const token = `${input}.${sig.toString("base64url")}`;
    expect(rejected(await verify(token))).toBe("malformed");
    // The same input without the crit header verifies, so the refusal is the crit header's.
    const { crit: _c, ...plain } = header;
    const plainInput = `${b64(plain)}.${b64(payload)}`;
    const plainSig = cryptoSign("sha256", Buffer.from(plainInput), { key: priv, dsaEncoding: "ieee-p1363" });
    expect((await verify(`${plainInput}.${plainSig.toString("base64url")}`)).ok).toBe(true);
  });

  it("a signature of the wrong length, DER-encoded, or in non-canonical base64url is rejected", async () => {
    const { token } = await mint();
    const [h, p, s] = token.split(".") as [string, string, string];
    const raw = Buffer.from(s, "base64url");
    expect(rejected(await verify(`${h}.${p}.${raw.subarray(0, 63).toString("base64url")}`))).toBe(
      "signature",
    );
    expect(rejected(await verify(`${h}.${p}.`))).toBe("signature");
    // The same signature as DER (what node:crypto emits by default) is not a JWS ES256 signature.
    const der = Buffer.concat([
      Buffer.from([0x30, 0x44, 0x02, 0x20]),
      raw.subarray(0, 32),
      Buffer.from([0x02, 0x20]),
      raw.subarray(32),
    ]);
    expect(rejected(await verify(`${h}.${p}.${der.toString("base64url")}`))).toBe("signature");
    expect((await verify(`${h}.${p}.${raw.toString("base64")}`)).ok).toBe(false);
    expect((await verify(`${h}.${p}.${s}=`)).ok).toBe(false);
    expect((await verify(`${h}.${p} .${s}`)).ok).toBe(false);
    expect((await verify(`${h}.${p}.${s}.${s}`)).ok).toBe(false);
  });

  it("picks the key by kid, and by key type; a kid-less token only when one key could have signed it", async () => {
    const { payload } = await mint();
    const pk = await keys.activeKey();
    const noKid = await new SignJWT({ ...payload })
      .setProtectedHeader({ alg: "ES256", typ: "JWT" })
      .sign(pk.privateKey);
    expect((await verify(noKid)).ok).toBe(true);
    const other = await exportJWK((await generateKeyPair("ES256", { extractable: true })).publicKey);
    const two: JSONWebKeySet = { keys: [...jwks.keys, { ...other, kid: "other", alg: "ES256", use: "sig" }] };
    expect(rejected(await verify(noKid, { keys: two }))).toBe("unknown_kid");
    expect((await verify((await mint()).token, { keys: two })).ok).toBe(true);
    // Our own key published for encryption, or for another algorithm, is not a verification key.
    const pub = jwks.keys[0] as Record<string, unknown>;
    for (const k of [
      { ...pub, use: "enc" },
      { ...pub, alg: "ES384" },
      { ...pub, key_ops: ["encrypt"] },
    ]) {
      expect(rejected(await verify((await mint()).token, { keys: { keys: [k] } }))).toBe("unknown_kid");
    }
    expect(rejected(await verify((await mint()).token, { keys: { keys: [] } }))).toBe("unknown_kid");
  });

  it("a verifier cached for one key set never verifies against another under the same kid", async () => {
    const { token } = await mint();
    expect((await verify(token)).ok).toBe(true);
    const impostor = await exportJWK((await generateKeyPair("ES256", { extractable: true })).publicKey);
    const swapped: JSONWebKeySet = { keys: [{ ...impostor, kid: key.kid, alg: "ES256", use: "sig" }] };
    expect(rejected(await verify(token, { keys: swapped }))).toBe("signature");
    expect((await verify(token)).ok).toBe(true);
  });

  it("verifies a token that a second implementation (jsonwebtoken) signed, and only with its key", async () => {
    const pair = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const jwk = { ...pair.publicKey.export({ format: "jwk" }), kid: "interop", alg: "ES256", use: "sig" };
    const { payload } = await mint();
    const token = jwt.sign({ ...payload }, pair.privateKey.export({ type: "pkcs8", format: "pem" }), {
      algorithm: "ES256",
      keyid: "interop",
    });
    const v = await verify(token, { keys: { keys: [jwk] } as JSONWebKeySet });
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.payload).toEqual(payload);
    expect(rejected(await verify(token))).toBe("unknown_kid");
    // And a raw node:crypto signature over a header of our choosing, for the same reason.
    const input = `${b64({ alg: "ES256", kid: "interop", typ: "JWT" })}.${b64(payload)}`;
    const sig = cryptoSign("sha256", Buffer.from(input), { key: pair.privateKey, dsaEncoding: "ieee-p1363" });
    expect(
      (await verify(`${input}.${sig.toString("base64url")}`, { keys: { keys: [jwk] } as JSONWebKeySet })).ok,
    ).toBe(true);
  });
});

describe("EdDSA", () => {
  it("mints and verifies with an Ed25519 key", async () => {
    const edDb = await identityDb();
    const ed = new SigningKeys(edDb, { kek: testKek(), clock, alg: "EdDSA" });
    await ed.ensureActive();
    const k = await ed.activeKey();
    expect(k.alg).toBe("EdDSA");
    const { token } = await mintIdToken(k, jobClaims(pushInput()), { issuer, audience, clock });
    const v = await verifyIdToken(token, { issuer, audience, keys: await ed.jwks(), clock });
    expect(v.ok).toBe(true);
    await edDb.destroy();
  });

  it("exports an EdDSA JWK without private material", async () => {
    const kp = await generateKeyPair("EdDSA", { extractable: true });
    expect(await exportJWK(kp.publicKey)).not.toHaveProperty("d");
  });
});
