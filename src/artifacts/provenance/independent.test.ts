// An independent check of what we sign: the bundles verify with @sigstore/verify (sigstore-js),
// given only our public key. Nothing from this folder is in that path: the bundle goes in as JSON
// text, the key as SPKI DER bytes, the subject check uses node:crypto directly.
import { createHash, createPublicKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { bundleFromJSON } from "@sigstore/bundle";
import { PublicKey, TrustedRoot } from "@sigstore/protobuf-specs";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { afterEach, describe, expect, it } from "vitest";
import { localKek } from "../../identity/master-key.js";
import { ProvenanceKeys } from "./keys.js";
import { writeProvenance } from "./publish.js";
import type { ProvenanceDb } from "./tables.js";
import { fixtureArtifacts, fixtureInput, provenanceTestDb } from "./test-support.js";

let db: ProvenanceDb | undefined;
afterEach(async () => {
  await db?.destroy();
  db = undefined;
});

/** Verifies with sigstore-js: trust material holds the key under its hint; tlog, ctlog and timestamp thresholds 0. */
function sigstoreVerify(bundleJson: string, keys: Record<string, Buffer>) {
  const bundle = bundleFromJSON(JSON.parse(bundleJson));
  const root = TrustedRoot.fromJSON({
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [],
    certificateAuthorities: [],
    ctlogs: [],
    timestampAuthorities: [],
  });
  const publicKeys = Object.fromEntries(
    Object.entries(keys).map(([hint, spki]) => [
      hint,
      PublicKey.fromJSON({
        rawBytes: spki.toString("base64"),
        keyDetails: "PKIX_ECDSA_P256_SHA_256",
        validFor: { start: "2020-01-01T00:00:00Z" },
      }),
    ]),
  );
  const verifier = new Verifier(toTrustMaterial(root, publicKeys), {
    tlogThreshold: 0,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  verifier.verify(toSignedEntity(bundle));
  return bundle;
}

/** The in-toto statement out of a verified bundle, and whether an artifact is among its subjects. */
function subjectsOf(bundleJson: string): string[] {
  const b = JSON.parse(bundleJson);
  expect(b.dsseEnvelope.payloadType).toBe("application/vnd.in-toto+json");
  const st = JSON.parse(Buffer.from(b.dsseEnvelope.payload, "base64").toString("utf8"));
  expect(st._type).toBe("https://in-toto.io/Statement/v1");
  expect(st.predicateType).toBe("https://slsa.dev/provenance/v1");
  return st.subject.map((s: { digest: { sha256: string } }) => s.digest.sha256);
}

const spkiOfPem = (pem: string) => createPublicKey(pem).export({ type: "spki", format: "der" });
const hexSha = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");

describe("bundles verify with @sigstore/verify", () => {
  async function fresh() {
    db = await provenanceTestDb();
    const keys = new ProvenanceKeys(db, { kek: localKek(Buffer.alloc(32, 3)) });
    const key = await keys.ensureActive();
    const written = await writeProvenance(db, keys, fixtureInput());
    return { json: written.json, hint: key.keyid, spki: spkiOfPem(key.publicKeyPem) };
  }

  it("a freshly signed bundle", async () => {
    const { json, hint, spki } = await fresh();
    const bundle = sigstoreVerify(json, { [hint]: spki });
    expect(bundle.mediaType).toBe("application/vnd.dev.sigstore.bundle.v0.3+json");
    expect(bundle.verificationMaterial.content?.$case).toBe("publicKey");
    expect(bundle.content.$case).toBe("dsseEnvelope");
    // The key hint is the sha256 of the SPKI DER, computable by anyone with the public key.
    expect(hint).toBe(hexSha(spki));
    for (const body of Object.values(fixtureArtifacts)) expect(subjectsOf(json)).toContain(hexSha(body));
  });

  it("the checked-in golden bundle, with the checked-in public key", () => {
    const json = readFileSync(new URL("./fixtures/bundle.golden.json", import.meta.url), "utf8");
    const pem = readFileSync(new URL("./fixtures/fixture-key.pub.pem", import.meta.url), "utf8");
    const spki = spkiOfPem(pem);
    sigstoreVerify(json, { [hexSha(spki)]: spki });
    const golden = JSON.parse(
      readFileSync(new URL("./fixtures/statement.golden.json", import.meta.url), "utf8"),
    );
    const payload = JSON.parse(Buffer.from(JSON.parse(json).dsseEnvelope.payload, "base64").toString());
    expect(payload).toEqual(golden);
  });

  it("rejects a tampered statement, and a key it was not given", async () => {
    const { json, hint, spki } = await fresh();
    const b = JSON.parse(json);
    const st = JSON.parse(Buffer.from(b.dsseEnvelope.payload, "base64").toString());
    st.subject[0].digest.sha256 = hexSha("evil");
    b.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString("base64");
    expect(() => sigstoreVerify(JSON.stringify(b), { [hint]: spki })).toThrow(
      /signature verification failed/,
    );
    const other = spkiOfPem(readFileSync(new URL("./fixtures/fixture-key.pub.pem", import.meta.url), "utf8"));
    expect(() => sigstoreVerify(json, { [hexSha(other)]: other })).toThrow(/key not found/);
    // The right hint with the wrong key material: the signature does not verify.
    expect(() => sigstoreVerify(json, { [hint]: other })).toThrow(/signature verification failed/);
  });
});
