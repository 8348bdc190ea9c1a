import { generateKeyPairSync } from "node:crypto";
import { sql } from "kysely";
import { afterEach, describe, expect, it } from "vitest";
import { listAudit } from "../../audit/log.js";
import { verifyAudit } from "../../audit/verify.js";
import { openWithKek } from "../../identity/envelope.js";
import { localKek } from "../../identity/master-key.js";
import { frozenClock } from "../../identity/test-support.js";
import { signStatement, statementPayload } from "./bundle.js";
import { keyHint, ProvenanceKeys } from "./keys.js";
import { findProvenance, writeProvenance } from "./publish.js";
import { buildStatement } from "./statement.js";
import type { ProvenanceDb } from "./tables.js";
import { fixtureArtifacts, fixtureInput, provenanceTestDb, sha256, testBuilderId } from "./test-support.js";
import { type VerifyOptions, verifyArtifact } from "./verify.js";

/** Statements as arbitrary JSON, for tests that poke at any path. */
// biome-ignore lint/suspicious/noExplicitAny: mutations reach into arbitrary JSON paths
type Json = any;

let db: ProvenanceDb | undefined;
afterEach(async () => {
  await db?.destroy();
  db = undefined;
});

const kek = () => localKek(Buffer.alloc(32, 9));
const app = Buffer.from(fixtureArtifacts["dist/app.js"]);

async function signed() {
  db = await provenanceTestDb();
  const keys = new ProvenanceKeys(db, { kek: kek(), clock: frozenClock() });
  await keys.ensureActive();
  const written = await writeProvenance(db, keys, fixtureInput(), frozenClock());
  const trustedKeys = await keys.trustedKeys();
  const base: VerifyOptions = {
    bundle: written.json,
    artifact: { bytes: app, name: "dist/app.js" },
    trustedKeys,
    expect: { builderId: testBuilderId },
  };
  return { keys, written, trustedKeys, base };
}

/** Re-encodes the bundle with its payload replaced (signature left as it was). */
function withPayload(json: string, change: (statement: Json) => void): string {
  const bundle = JSON.parse(json);
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString());
  change(statement);
  bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString("base64");
  return JSON.stringify(bundle);
}

describe("ProvenanceKeys", () => {
  it("creates one P-256 key whose id is the sha256 of its SPKI, audited", async () => {
    db = await provenanceTestDb();
    const keys = new ProvenanceKeys(db, { kek: kek() });
    const k = await keys.ensureActive("usr_admin");
    expect(await keys.ensureActive()).toMatchObject({ keyid: k.keyid });
    expect(k.keyid).toMatch(/^[0-9a-f]{64}$/);
    expect(keyHint(k.publicKey)).toBe(k.keyid);
    expect(k.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    const audit = await listAudit(db as never, { type: "provenance.key_created" });
    expect(audit).toHaveLength(1);
    expect(audit[0]).toMatchObject({ actor: "usr_admin", data: { keyid: k.keyid } });
  });

  it("stores the private key sealed: the database never holds it in any encoding", async () => {
    db = await provenanceTestDb();
    const k = kek();
    const keys = new ProvenanceKeys(db, { kek: k });
    const info = await keys.ensureActive();
    const active = await keys.activeKey();
    const pkcs8 = active.privateKey.export({ type: "pkcs8", format: "der" });
    const pem = active.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const d = active.privateKey.export({ format: "jwk" }).d as string;
    const rows = (await sql<Record<string, unknown>>`select * from provenance_keys`.execute(db)).rows;
    const dump = JSON.stringify(rows);
    expect(dump).not.toContain("PRIVATE KEY");
    expect(dump).not.toContain(pem.split("\n")[1]);
    for (const enc of ["hex", "base64", "base64url"] as const) {
      expect(dump).not.toContain(pkcs8.toString(enc));
      expect(dump).not.toContain(Buffer.from(d, "base64url").toString(enc));
    }
    const sealed = rows[0]?.private_key as string;
    expect(JSON.parse(sealed)).toMatchObject({ v: 1, kek: k.id });
    // It opens only under this master key, bound to this row.
    expect(await openWithKek(k, sealed, `airlock:provenance_key:${info.keyid}`)).toEqual(pkcs8);
    await expect(new ProvenanceKeys(db, { kek: localKek(Buffer.alloc(32, 1)) }).activeKey()).rejects.toThrow(
      /master key/,
    );
  });

  it("rotation retires the old key (private half erased) and keeps trusting it for verification", async () => {
    const { keys, written, trustedKeys, base } = await signed();
    const old = trustedKeys[0];
    const { created, retired } = await keys.rotate("usr_admin");
    expect(retired?.keyid).toBe(old?.keyid);
    expect((await keys.activeKey()).keyid).not.toBe(old?.keyid);
    const priv = await sql<{
      private_key: string | null;
    }>`select private_key from provenance_keys where keyid = ${old?.keyid as string}`.execute(
      db as ProvenanceDb,
    );
    expect(priv.rows[0]?.private_key).toBeNull();
    const trusted = await keys.trustedKeys();
    expect(trusted.map((k) => k.keyid)).toEqual(expect.arrayContaining([created.keyid, old?.keyid]));
    expect(verifyArtifact({ ...base, trustedKeys: trusted }).ok).toBe(true);
    expect(written.keyid).toBe(old?.keyid);
    expect(await listAudit(db as never, { type: "provenance.key_rotated" })).toHaveLength(1);
    expect((await verifyAudit(db as never)).ok).toBe(true);
  });

  it("has no active key until one is created", async () => {
    db = await provenanceTestDb();
    await expect(new ProvenanceKeys(db, { kek: kek() }).activeKey()).rejects.toThrow(/no active provenance/);
  });
});

describe("sign, store, verify", () => {
  it("a signed bundle verifies for each subject, and the statement comes back", async () => {
    const { written, base } = await signed();
    for (const [name, body] of Object.entries(fixtureArtifacts)) {
      const r = verifyArtifact({ ...base, artifact: { bytes: Buffer.from(body), name } });
      expect(r).toMatchObject({ ok: true, subject: { name, digest: sha256(body) }, keyid: written.keyid });
    }
    const byDigest = verifyArtifact({ ...base, artifact: { digest: sha256(app) } });
    expect(byDigest.ok && byDigest.statement).toEqual(buildStatement(fixtureInput()));
    expect(Buffer.from(written.bundle.dsseEnvelope.payload, "base64")).toEqual(
      statementPayload(written.statement),
    );
  });

  it("passes every policy expectation the job meets", async () => {
    const { base } = await signed();
    const r = verifyArtifact({
      ...base,
      expect: {
        builderId: testBuilderId,
        repo: "https://git.example.test/acme/web.git",
        ref: "main",
        workflow: "./.github/workflows/release.yml",
        protectedRefOnly: true,
      },
    });
    expect(r.ok).toBe(true);
  });

  it("stores the bundle with a subject index and an audit record", async () => {
    const { written } = await signed();
    const found = await findProvenance(db as ProvenanceDb, sha256(app));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({
      digest: written.digest,
      name: "dist/app.js",
      runnerId: "rnr_cccccccccccccccc",
      bundle: written.json,
    });
    expect(sha256(found[0]?.bundle as string)).toBe(written.digest);
    expect(await findProvenance(db as ProvenanceDb, sha256("other"))).toEqual([]);
    const audit = await listAudit(db as never, { type: "provenance.signed" });
    expect(audit[0]).toMatchObject({
      jobId: "job_bbbbbbbbbbbbbbbb",
      runnerId: "rnr_cccccccccccccccc",
      data: { bundle: written.digest, keyid: written.keyid },
    });
  });
});

describe("verification failures name their cause", () => {
  it("tampered artifact", async () => {
    const { base } = await signed();
    const r = verifyArtifact({
      ...base,
      artifact: { bytes: Buffer.from("console.log('pwned')"), name: "dist/app.js" },
    });
    expect(r).toMatchObject({ ok: false, reason: "digest_mismatch" });
    expect(!r.ok && r.message).toMatch(
      /dist\/app\.js has digest sha256:[0-9a-f]{64}, but the provenance records/,
    );
    const stated = verifyArtifact({ ...base, artifact: { bytes: app, digest: sha256("something else") } });
    expect(stated).toMatchObject({ ok: false, reason: "digest_mismatch" });
    expect(!stated.ok && stated.message).toMatch(/altered/);
  });

  it("subject mismatch: an artifact the statement does not cover", async () => {
    const { base } = await signed();
    const r = verifyArtifact({ ...base, artifact: { bytes: Buffer.from("unrelated") } });
    expect(r).toMatchObject({ ok: false, reason: "subject_mismatch" });
    expect(!r.ok && r.message).toMatch(/is not a subject of this provenance, which covers: checksums\.txt/);
  });

  it("tampered statement (signature left as it was)", async () => {
    const { written, base } = await signed();
    const bundle = withPayload(written.json, (s) => {
      s.subject[1].digest.sha256 = sha256("evil").slice(7);
    });
    const r = verifyArtifact({ ...base, bundle });
    expect(r).toMatchObject({ ok: false, reason: "signature_invalid" });
    expect(!r.ok && r.message).toMatch(
      /does not verify with key [0-9a-f]{64}: the statement or its signature was altered/,
    );
    // The same statement serialised differently is a different payload: bytes are what is signed.
    const pretty = JSON.parse(written.json);
    pretty.dsseEnvelope.payload = Buffer.from(JSON.stringify(written.statement, null, 2)).toString("base64");
    expect(verifyArtifact({ ...base, bundle: pretty })).toMatchObject({ reason: "signature_invalid" });
  });

  it("tampered signature", async () => {
    const { written, base } = await signed();
    const bundle = JSON.parse(written.json);
    const sig = Buffer.from(bundle.dsseEnvelope.signatures[0].sig, "base64");
    sig[sig.length - 1] ^= 1;
    bundle.dsseEnvelope.signatures[0].sig = sig.toString("base64");
    expect(verifyArtifact({ ...base, bundle })).toMatchObject({ ok: false, reason: "signature_invalid" });
  });

  it("signature by an unknown key (even one that claims a trusted key's hint is caught)", async () => {
    const { written, base, trustedKeys } = await signed();
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const rogue = { keyid: keyHint(publicKey), alg: "ecdsa-p256-sha256", publicKey, privateKey };
    const bundle = signStatement(written.statement, rogue);
    const r = verifyArtifact({ ...base, bundle });
    expect(r).toMatchObject({ ok: false, reason: "unknown_key" });
    expect(!r.ok && r.message).toContain(`signed by key ${rogue.keyid}, which is not one of the 1 trusted`);
    // Claiming the trusted key's hint does not help: the signature does not verify under it.
    const lying = signStatement(written.statement, { ...rogue, keyid: trustedKeys[0]?.keyid as string });
    expect(verifyArtifact({ ...base, bundle: lying })).toMatchObject({
      ok: false,
      reason: "signature_invalid",
    });
  });

  it("revoked key", async () => {
    const { written, base } = await signed();
    const r = verifyArtifact({ ...base, revocations: { keys: [written.keyid] } });
    expect(r).toMatchObject({ ok: false, reason: "key_revoked" });
    expect(!r.ok && r.message).toBe(`the bundle was signed by key ${written.keyid}, which has been revoked`);
  });

  it("revoked runner's artifact", async () => {
    const { base } = await signed();
    const r = verifyArtifact({ ...base, revocations: { runners: ["rnr_cccccccccccccccc"] } });
    expect(r).toMatchObject({ ok: false, reason: "runner_revoked" });
    expect(!r.ok && r.message).toContain(
      "runner rnr_cccccccccccccccc (job job_bbbbbbbbbbbbbbbb), which has been revoked",
    );
  });

  it("revoked artifact", async () => {
    const { base } = await signed();
    const r = verifyArtifact({ ...base, revocations: { artifacts: new Set([sha256(app)]) } });
    expect(r).toMatchObject({ ok: false, reason: "artifact_revoked" });
    expect(!r.ok && r.message).toContain(`dist/app.js (${sha256(app)}) has been revoked`);
    // Revoking one artifact leaves its siblings alone.
    const sibling = verifyArtifact({
      ...base,
      artifact: { bytes: Buffer.from(fixtureArtifacts["checksums.txt"]) },
      revocations: { artifacts: [sha256(app)] },
    });
    expect(sibling.ok).toBe(true);
  });

  it("wrong builder", async () => {
    const { base } = await signed();
    const r = verifyArtifact({ ...base, expect: { builderId: "https://airlock.dev/builder/prod" } });
    expect(r).toMatchObject({ ok: false, reason: "builder_mismatch" });
    expect(!r.ok && r.message).toBe(
      "the artifact was built by https://airlock.dev/builder/test, expected builder https://airlock.dev/builder/prod",
    );
  });

  it.each([
    [
      "policy_repo",
      { repo: "https://git.example.test/acme/api" },
      /repository https:\/\/git\.example\.test\/acme\/web, expected .*acme\/api/,
    ],
    ["policy_ref", { ref: "release" }, /ref refs\/heads\/main, expected release/],
    ["policy_ref", { ref: "refs/tags/main" }, /ref refs\/heads\/main, expected refs\/tags\/main/],
    [
      "policy_workflow",
      { workflow: ".github/workflows/ci.yml" },
      /workflow \.github\/workflows\/release\.yml, expected \.github\/workflows\/ci\.yml/,
    ],
  ] as const)("%s: %o", async (reason, expectation, message) => {
    const { base } = await signed();
    const r = verifyArtifact({ ...base, expect: { builderId: testBuilderId, ...expectation } });
    expect(r).toMatchObject({ ok: false, reason });
    expect(!r.ok && r.message).toMatch(message);
  });

  it("policy_unprotected_ref", async () => {
    db = await provenanceTestDb();
    const keys = new ProvenanceKeys(db, { kek: kek() });
    await keys.ensureActive();
    const w = await writeProvenance(
      db,
      keys,
      fixtureInput({ ref: "refs/heads/feature", refProtected: false }),
    );
    const opts = { bundle: w.json, artifact: { bytes: app }, trustedKeys: await keys.trustedKeys() };
    expect(verifyArtifact({ ...opts, expect: { builderId: testBuilderId } }).ok).toBe(true);
    const r = verifyArtifact({ ...opts, expect: { builderId: testBuilderId, protectedRefOnly: true } });
    expect(r).toMatchObject({ ok: false, reason: "policy_unprotected_ref" });
    expect(!r.ok && r.message).toBe(
      "the artifact was built from refs/heads/feature, which was not a protected ref when the job ran",
    );
  });

  it("a signed statement that is not valid provenance", async () => {
    const { base, keys } = await signed();
    const key = await keys.activeKey();
    const bad = structuredClone(buildStatement(fixtureInput())) as Json;
    bad.predicate.runDetails.metadata.startedOn = "yesterday";
    const r = verifyArtifact({ ...base, bundle: signStatement(bad, key) });
    expect(r).toMatchObject({ ok: false, reason: "statement_invalid" });
    expect(!r.ok && r.message).toContain("predicate.runDetails.metadata.startedOn");
  });

  it("something that is not a v0.3 public-key bundle", async () => {
    const { written, base } = await signed();
    expect(verifyArtifact({ ...base, bundle: "{" })).toMatchObject({ reason: "bundle_invalid" });
    const v01 = {
      ...JSON.parse(written.json),
      mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
    };
    const r = verifyArtifact({ ...base, bundle: v01 });
    expect(r).toMatchObject({ ok: false, reason: "bundle_invalid" });
    expect(!r.ok && r.message).toContain("mediaType");
    const two = JSON.parse(written.json);
    two.dsseEnvelope.signatures.push(two.dsseEnvelope.signatures[0]);
    expect(verifyArtifact({ ...base, bundle: two })).toMatchObject({ reason: "bundle_invalid" });
  });
});
