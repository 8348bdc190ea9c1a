import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { listAudit } from "../audit/log.js";
import { verifyAudit } from "../audit/verify.js";
import type { Db } from "../store/database.js";
import { jobClaims } from "./claims.js";
import { openWithKek } from "./envelope.js";
import { mintIdToken, verifyIdToken } from "./id-token.js";
import { localKek } from "./master-key.js";
import { publicationGraceSeconds, SigningKeys } from "./signing-keys.js";
import { frozenClock, identityDb, pushInput, testKek } from "./test-support.js";

const issuer = "https://airlock.example.test";
const audience = "aud";
let db: Db | undefined;
afterEach(async () => {
  await db?.destroy();
  db = undefined;
});

describe("SigningKeys", () => {
  it("creates one ES256 key on first use, with a thumbprint kid, audited", async () => {
    db = await identityDb();
    const keys = new SigningKeys(db, { kek: testKek(), clock: frozenClock() });
    const first = await keys.ensureActive();
    expect(await keys.ensureActive()).toEqual(first);
    expect(first.alg).toBe("ES256");
    expect(first.kid).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(first.publicJwk).toMatchObject({
      kty: "EC",
      crv: "P-256",
      kid: first.kid,
      alg: "ES256",
      use: "sig",
    });
    expect(first.publicJwk).not.toHaveProperty("d");
    const audit = await listAudit(db, { type: "identity.key_created" });
    expect(audit).toHaveLength(1);
    expect(audit[0]?.data).toMatchObject({ kid: first.kid, alg: "ES256" });
  });

  it("stores the private key sealed, never as plaintext", async () => {
    db = await identityDb();
    const kek = testKek();
    const keys = new SigningKeys(db, { kek });
    const info = await keys.ensureActive();
    // In memory the unsealed key is not extractable.
    expect((await keys.activeKey()).privateKey.extractable).toBe(false);
    const rows = await sql<{ private_key: string }>`select * from signing_keys`.execute(db);
    const row = rows.rows[0] as { private_key: string };
    const { d } = JSON.parse(
      (await openWithKek(kek, row.private_key, `airlock:signing_key:${info.kid}`)).toString(),
    ) as {
      d: string;
    };
    expect(d).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const dump = JSON.stringify(rows.rows);
    expect(dump).not.toContain(d);
    expect(dump).not.toContain(Buffer.from(d, "base64url").toString("hex"));
    expect(dump).not.toContain(Buffer.from(d, "base64url").toString("base64"));
    expect(JSON.parse(row.private_key)).toMatchObject({ v: 1, kek: kek.id });
  });

  it("refuses to unseal under another master key", async () => {
    db = await identityDb();
    await new SigningKeys(db, { kek: testKek() }).ensureActive();
    await expect(new SigningKeys(db, { kek: testKek() }).activeKey()).rejects.toThrow(
      /another master key|master key/,
    );
  });

  it("a sealed key moved to another row does not open", async () => {
    db = await identityDb();
    const kek = localKek(Buffer.alloc(32, 1));
    const keys = new SigningKeys(db, { kek });
    const a = await keys.ensureActive();
    const sealedA = (
      await sql<{ private_key: string }>`select private_key from signing_keys where kid = ${a.kid}`.execute(
        db,
      )
    ).rows[0]?.private_key as string;
    const { created: b } = await keys.rotate();
    await sql`update signing_keys set private_key = ${sealedA} where kid = ${b.kid}`.execute(db);
    await expect(new SigningKeys(db, { kek }).activeKey()).rejects.toThrow(/failed authentication/);
  });

  it("rotation keeps the old public key in the JWKS until its tokens have expired, then drops it", async () => {
    db = await identityDb();
    const clock = frozenClock();
    const keys = new SigningKeys(db, {
      kek: testKek(),
      clock,
      maxTokenLifetimeSeconds: 600,
      activeCacheMs: 0,
    });
    const old = await keys.ensureActive();
    const oldKey = await keys.activeKey();
    const token = (
      await mintIdToken(oldKey, jobClaims(pushInput()), { issuer, audience, clock, lifetimeSeconds: 600 })
    ).token;

    clock.advance(30);
    const { created, retired } = await keys.rotate("usr_admin");
    expect(retired?.kid).toBe(old.kid);
    expect(retired?.retiredAt).toBe(clock.now().toISOString());
    const publishedUntil = clock.now().getTime() + (600 + publicationGraceSeconds) * 1000;
    expect(retired?.expiresAt).toBe(new Date(publishedUntil).toISOString());
    expect((await keys.activeKey()).kid).toBe(created.kid);

    // The retired key's private half is erased: it never signs again.
    const priv = await sql<{
      private_key: string | null;
    }>`select private_key from signing_keys where kid = ${old.kid}`.execute(db);
    expect(priv.rows[0]?.private_key).toBeNull();

    // Both published; the old token still verifies until it expires.
    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual([created.kid, old.kid]);
    clock.advance(500);
    expect((await verifyIdToken(token, { issuer, audience, keys: await keys.jwks(), clock })).ok).toBe(true);

    // After the publication window: gone from the JWKS (every token it signed has expired by then).
    clock.set(publishedUntil);
    expect((await keys.jwks()).keys.map((k) => k.kid)).toEqual([created.kid]);
    expect((await keys.list()).map((k) => k.kid)).toEqual([created.kid, old.kid]);

    const audit = await listAudit(db, { type: "identity.key_rotated" });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({
      actor: "usr_admin",
      data: { kid: created.kid, previousKids: [old.kid] },
    });
    expect((await verifyAudit(db)).ok).toBe(true);
  });

  it("returns the same JWKS object while the set is unchanged (so verifiers keep imported keys)", async () => {
    db = await identityDb();
    const keys = new SigningKeys(db, { kek: testKek() });
    await keys.ensureActive();
    const a = await keys.jwks();
    expect(await keys.jwks()).toBe(a);
    await keys.rotate();
    expect(await keys.jwks()).not.toBe(a);
  });

  it("sees a rotation by another process once its cache lapses", async () => {
    db = await identityDb();
    const clock = frozenClock();
    const kek = testKek();
    const mine = new SigningKeys(db, { kek, clock, activeCacheMs: 5000 });
    const theirs = new SigningKeys(db, { kek, clock });
    const first = await mine.ensureActive();
    expect((await mine.activeKey()).kid).toBe(first.kid);
    const { created } = await theirs.rotate();
    expect((await mine.activeKey()).kid).toBe(first.kid);
    clock.advance(5);
    expect((await mine.activeKey()).kid).toBe(created.kid);
  });

  it("rotateIfOlderThan rotates only an old key", async () => {
    db = await identityDb();
    const clock = frozenClock();
    const keys = new SigningKeys(db, { kek: testKek(), clock });
    const a = await keys.rotateIfOlderThan(86_400);
    clock.advance(3600);
    expect((await keys.rotateIfOlderThan(86_400)).kid).toBe(a.kid);
    clock.advance(86_400);
    expect((await keys.rotateIfOlderThan(86_400)).kid).not.toBe(a.kid);
  });

  it("has no active key until one is created", async () => {
    db = await identityDb();
    await expect(new SigningKeys(db, { kek: testKek() }).activeKey()).rejects.toThrow(
      /no active signing key/,
    );
  });
});
