import { createHash, createPublicKey, generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative, resolve } from "node:path";
import { bundleFromJSON } from "@sigstore/bundle";
import { PublicKey, TrustedRoot } from "@sigstore/protobuf-specs";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ArtifactInfo } from "../../src/artifacts/catalog.js";
import { Airlock, GitRepo, jobByKey, runIdOf } from "./cli-harness.js";

/**
 * Signed provenance of a real job, checked the way a consumer of its artifacts would: `airlock
 * verify` with the expectations a release gate pins, each way it must refuse (with the reason in
 * what it prints and in the audit log), the stored bundle verified by sigstore-js given only the
 * public key, and no private key in the database.
 */

const repoName = "example/hello-node";
const workflow = ".airlock/workflows/ci.yml";
const example = resolve("examples/hello-node");

let airlock: Airlock;
let repo: GitRepo;
const scratch: string[] = [];

/** The hello-node build on main (protected) and on `feature` (not protected, different bytes). */
let main: { artifact: ArtifactInfo; buildJobId: string; outputDigest: string };
let feature: { artifact: ArtifactInfo; buildJobId: string };

/** Every verification this file asks for, in order: null when it verified, else the reason. */
const asked: (string | null)[] = [];

const sha256 = (b: string | Buffer) => createHash("sha256").update(b).digest("hex");

async function runBuild(ref: string, event: string) {
  const r = await airlock.cli("run", repoName, "--ref", ref, "--event", event, "--no-logs");
  expect(r.status, r.stdout + r.stderr).toBe(0);
  const run = await airlock.run(runIdOf(r.stdout));
  expect(run.state).toBe("succeeded");
  const build = jobByKey(run, "build");
  const [artifact, ...more] = await airlock.artifacts(run.id);
  expect(more).toEqual([]);
  if (!artifact) throw new Error(`run ${run.id} uploaded no artifact`);
  expect(artifact.jobId).toBe(build.id);
  return { artifact, buildJobId: build.id, outputDigest: build.outputs.digest ?? "" };
}

/** `airlock verify --json`, expected to pass. */
async function verified(artifact: string, ...flags: string[]) {
  const { status, verification } = await airlock.verify(artifact, ...flags);
  asked.push(verification.ok ? null : (verification.reason ?? "?"));
  expect(verification, JSON.stringify(verification)).toMatchObject({ ok: true });
  expect(status).toBe(0);
  return verification;
}

/** `airlock verify` as a person runs it, expected to refuse: exit 3, the reason in the one red line. */
async function refused(reason: string, artifact: string, ...flags: string[]) {
  const r = await airlock.cli("verify", artifact, ...flags);
  asked.push(/verification failed \((\w+)\)/.exec(r.stderr)?.[1] ?? (r.status === 0 ? null : "?"));
  expect(r.stderr, r.stdout + r.stderr).toContain(`verification failed (${reason}): `);
  expect(r.status).toBe(3);
  expect(r.stdout).toBe("");
  return r.stderr;
}

function download(artifact: string) {
  const out = mkdtempSync(join(tmpdir(), "airlock-e2e-provenance-out-"));
  scratch.push(out);
  return { out, result: airlock.cli("artifacts", "download", artifact, "--out", out) };
}

/** Relative path → sha256 hex of every file under dir. */
function hashTree(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out[relative(dir, p)] = sha256(readFileSync(p));
    }
  };
  walk(dir);
  return out;
}

function bundleRow(jobId: string) {
  const [row] = airlock.query<{ digest: string; bundle: string; keyid: string }>(
    "SELECT digest, bundle, keyid FROM provenance_bundles WHERE job_id = ?",
    jobId,
  );
  if (!row) throw new Error(`no provenance bundle for job ${jobId}`);
  return row;
}

interface Bundle {
  verificationMaterial: { publicKey: { hint: string } };
  dsseEnvelope: { payload: string; payloadType: string; signatures: { sig: string; keyid: string }[] };
}
interface Statement {
  subject: { name: string; digest: { sha256: string } }[];
  predicate: {
    buildDefinition: { externalParameters: { workflow: { ref: string; repository: string; path: string } } };
  };
}
const statementOf = (b: Bundle) =>
  JSON.parse(Buffer.from(b.dsseEnvelope.payload, "base64").toString("utf8")) as Statement;

/** DSSE v1 pre-authentication encoding, written from the spec (not imported from Airlock). */
const pae = (type: string, body: Buffer) =>
  Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);

/** Swaps a bundle row's JSON for the duration of fn (an attacker who can write the store). */
async function withBundle(digest: string, forged: string, fn: () => Promise<void>) {
  const [{ bundle: original } = { bundle: "" }] = airlock.query<{ bundle: string }>(
    "SELECT bundle FROM provenance_bundles WHERE digest = ?",
    digest,
  );
  const set = (text: string) =>
    airlock.tamper((db) =>
      db.prepare("UPDATE provenance_bundles SET bundle = ? WHERE digest = ?").run(text, digest),
    );
  expect(set(forged).changes).toBe(1);
  try {
    await fn();
  } finally {
    set(original);
  }
}

beforeAll(async () => {
  airlock = Airlock.create("provenance", {
    config: { sandbox: { uidBase: 510_000, uidCount: 64 }, network: { pool: "10.251.0.0/16" } },
  });
  repo = GitRepo.create("provenance", {}, example);
  // A branch that builds different bytes, so its provenance cannot be confused with main's.
  repo.git("checkout", "-q", "-b", "feature");
  repo.commit({ "src/greet.js": `${readFileSync(join(example, "src/greet.js"), "utf8")}// feature\n` });
  repo.git("checkout", "-q", "main");
  const add = await airlock.cli("repo", "add", repoName, "--source", repo.dir, "--protected-branch", "main");
  expect(add.status, add.stderr).toBe(0);
  main = await runBuild("main", "push");
  feature = await runBuild("feature", "workflow_dispatch");
}, 5 * 60_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
  for (const d of scratch) rmSync(d, { recursive: true, force: true });
});

describe("a green build's artifact verifies", () => {
  it("by artifact id and manifest digest, with repo, ref, workflow and protection pinned", async () => {
    const pinned = ["--repo", repoName, "--ref", "main", "--workflow", workflow, "--protected"];
    for (const ref of [main.artifact.id, main.artifact.digest]) {
      const v = await verified(ref, ...pinned);
      expect(v.digest).toBe(main.artifact.digest);
      expect(v.subject).toBe("hello-dist");
      expect(v.bundle).toBe(bundleRow(main.buildJobId).digest);
      expect(v.message).toContain(`from airlock:${repoName}@refs/heads/main`);
      expect(v.provenance).toMatchObject({
        external: { workflow: { path: workflow, ref: "refs/heads/main", repository: `airlock:${repoName}` } },
        internal: { jobId: main.buildJobId, jobKey: "build", refProtected: true, refType: "branch" },
      });
    }
    // A full ref pins as well as the short name.
    await verified(main.artifact.id, "--ref", "refs/heads/main");
  });

  it("each downloaded file verifies by its own sha256", async () => {
    const { out, result } = download(main.artifact.id);
    const r = await result;
    expect(r.status, r.stderr).toBe(0);
    const files = hashTree(out);
    // What build.js makes of the example: dist/greet.js is src/greet.js, plus a manifest naming it.
    const greet = sha256(readFileSync(join(example, "src/greet.js")));
    const manifest = `${JSON.stringify({ files: { "greet.js": `sha256:${greet}` } }, null, 2)}\n`;
    expect(files).toEqual({ "dist/greet.js": greet, "dist/manifest.json": sha256(manifest) });
    expect(main.outputDigest).toBe(greet);

    for (const [path, hex] of Object.entries(files)) {
      const v = await verified(
        `sha256:${hex}`,
        ...["--repo", repoName, "--ref", "main", "--workflow", workflow, "--protected"],
      );
      expect(v.subject).toBe(`hello-dist/${path}`);
      expect(v.provenance).toMatchObject({ internal: { jobId: main.buildJobId } });
    }
    // The subject index holds exactly the artifact and its files, all in one signed statement.
    const subjects = airlock.query<{ name: string; subject_digest: string }>(
      "SELECT name, subject_digest FROM provenance_subjects WHERE bundle_digest = ? ORDER BY name",
      bundleRow(main.buildJobId).digest,
    );
    expect(subjects).toEqual([
      { name: "hello-dist", subject_digest: main.artifact.digest },
      ...Object.entries(files).map(([p, hex]) => ({
        name: `hello-dist/${p}`,
        subject_digest: `sha256:${hex}`,
      })),
    ]);
  });
});

describe("verification refuses, naming the reason", () => {
  it("policy_repo, policy_ref, policy_workflow", async () => {
    const id = main.artifact.id;
    expect(await refused("policy_repo", id, "--repo", "example/other")).toContain(
      `built from repository airlock:${repoName}, expected airlock:example/other`,
    );
    expect(await refused("policy_ref", id, "--ref", "release")).toContain(
      "built from ref refs/heads/main, expected release",
    );
    // A short name matches refs/heads or refs/tags only; a full ref must match exactly.
    await refused("policy_ref", id, "--ref", "refs/tags/main");
    expect(await refused("policy_workflow", id, "--workflow", ".airlock/workflows/release.yml")).toContain(
      `built by workflow ${workflow}, expected .airlock/workflows/release.yml`,
    );
    // Each expectation is checked on its own: all right but one is still a refusal.
    await refused("policy_ref", id, "--repo", repoName, "--ref", "feature", "--workflow", workflow);
  });

  it("policy_unprotected_ref: a build of an unprotected branch, when --protected is asked", async () => {
    expect(feature.artifact.digest).not.toBe(main.artifact.digest);
    // Everything else about it is fine...
    const v = await verified(
      feature.artifact.id,
      "--repo",
      repoName,
      "--ref",
      "feature",
      "--workflow",
      workflow,
    );
    expect(v.provenance).toMatchObject({
      external: { workflow: { ref: "refs/heads/feature" } },
      internal: { jobId: feature.buildJobId, refProtected: false, eventName: "workflow_dispatch" },
    });
    // ...but it was not built from a protected ref.
    expect(
      await refused("policy_unprotected_ref", feature.artifact.id, "--repo", repoName, "--protected"),
    ).toContain("refs/heads/feature, which was not a protected ref when the job ran");
  });

  it("a tampered blob: download names the corruption and leaves no file; the new digest has no provenance", async () => {
    const greetDigest = `sha256:${sha256(readFileSync(join(example, "src/greet.js")))}`;
    const blob = airlock.blobPath(greetDigest);
    const original = readFileSync(blob);
    // Same length, so only the digest can tell.
    const evil = Buffer.from(original.toString("utf8").replace("Hello", "EVILL"));
    expect(evil.length).toBe(original.length);
    expect(evil.equals(original)).toBe(false);
    writeFileSync(blob, evil);
    try {
      const { out, result } = download(main.artifact.id);
      const r = await result;
      expect(r.status).not.toBe(0);
      expect(r.stderr).toContain(`blob ${greetDigest} is corrupt: its content does not match its digest`);
      // The altered bytes must not be left behind where a script would pick them up.
      expect(Object.keys(hashTree(out))).toEqual([]);

      const tampered = `sha256:${sha256(evil)}`;
      expect(await refused("no_provenance", tampered)).toContain(`no signed provenance names ${tampered}`);
    } finally {
      writeFileSync(blob, original);
    }
    const again = download(main.artifact.id);
    expect((await again.result).status).toBe(0);
  });

  it("no_provenance: a file no statement names", async () => {
    const random = `sha256:${sha256(`not built here ${Math.random()}`)}`;
    await refused("no_provenance", random);
  });

  it("signature_invalid: the signed statement edited in the store (ref changed to a release branch)", async () => {
    const row = bundleRow(main.buildJobId);
    const bundle = JSON.parse(row.bundle) as Bundle;
    const statement = statementOf(bundle);
    expect(statement.predicate.buildDefinition.externalParameters.workflow.ref).toBe("refs/heads/main");
    statement.predicate.buildDefinition.externalParameters.workflow.ref = "refs/heads/release";
    bundle.dsseEnvelope.payload = Buffer.from(JSON.stringify(statement)).toString("base64");
    await withBundle(row.digest, JSON.stringify(bundle), async () => {
      expect(await refused("signature_invalid", main.artifact.id, "--ref", "main")).toContain(
        "the statement or its signature was altered after signing",
      );
      // The forged claim is not believed either: nothing in it is read before the signature.
      await refused("signature_invalid", main.artifact.id, "--ref", "release");
    });
    await verified(main.artifact.id, "--ref", "main");
  });

  it("unknown_key: provenance for other bytes forged and signed with the attacker's own key", async () => {
    // Someone who can write the store, but does not hold Airlock's key, vouches for their bytes.
    const evilHex = sha256("console.log('pwned')\n");
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const hint = sha256(publicKey.export({ type: "spki", format: "der" }));
    const bundle = JSON.parse(bundleRow(main.buildJobId).bundle) as Bundle;
    const statement = statementOf(bundle);
    statement.subject = [{ name: "hello-dist/dist/greet.js", digest: { sha256: evilHex } }];
    const payload = Buffer.from(JSON.stringify(statement));
    const sig = sign("sha256", pae(bundle.dsseEnvelope.payloadType, payload), privateKey).toString("base64");
    bundle.verificationMaterial.publicKey.hint = hint;
    bundle.dsseEnvelope = {
      ...bundle.dsseEnvelope,
      payload: payload.toString("base64"),
      signatures: [{ sig, keyid: hint }],
    };
    const json = JSON.stringify(bundle);
    const forged = `sha256:${sha256(json)}`;
    airlock.tamper((db) => {
      db.prepare(
        "INSERT INTO provenance_bundles (digest, run_id, job_id, runner_id, keyid, bundle, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      ).run(forged, main.artifact.runId, "job_forged", "rnr_forged", hint, json, new Date().toISOString());
      db.prepare(
        "INSERT INTO provenance_subjects (bundle_digest, subject_digest, name) VALUES (?, ?, ?)",
      ).run(forged, `sha256:${evilHex}`, "hello-dist/dist/greet.js");
    });
    expect(await refused("unknown_key", `sha256:${evilHex}`, "--ref", "main")).toContain(
      `signed by key ${hint}, which is not one of the 1 trusted provenance keys`,
    );
  });

  it("unknown_key: the signing key's row removed from the store, so the signer is no longer trusted", async () => {
    const { keyid } = bundleRow(main.buildJobId);
    const [key] = airlock.query<Record<string, unknown>>(
      "SELECT * FROM provenance_keys WHERE keyid = ?",
      keyid,
    );
    if (!key) throw new Error(`no provenance key ${keyid}`);
    airlock.tamper((db) => db.prepare("DELETE FROM provenance_keys WHERE keyid = ?").run(keyid));
    try {
      expect(await refused("unknown_key", main.artifact.id)).toContain(`signed by key ${keyid}`);
    } finally {
      airlock.tamper((db) =>
        db
          .prepare(
            "INSERT INTO provenance_keys (keyid, alg, public_key, private_key, created_at, retired_at) VALUES (@keyid, @alg, @public_key, @private_key, @created_at, @retired_at)",
          )
          .run(key),
      );
    }
    await verified(main.artifact.id);
  });

  it("subject_mismatch and digest_mismatch: the subject index pointed at a real bundle for other bytes", async () => {
    // `airlock verify` takes no bundle of the caller's choosing (it looks the bundle up by digest),
    // so a bundle for another artifact can only reach it through the subject index. The
    // module-level tests cover a caller-supplied bundle (src/artifacts/provenance/provenance.test.ts).
    const { digest: bundleDigest } = bundleRow(main.buildJobId);
    const other = `sha256:${sha256("other bytes\n")}`;
    airlock.tamper((db) =>
      db
        .prepare("INSERT INTO provenance_subjects (bundle_digest, subject_digest, name) VALUES (?, ?, ?)")
        .run(bundleDigest, other, "other.js"),
    );
    expect(await refused("subject_mismatch", other)).toContain(
      `artifact ${other} is not a subject of this provenance, which covers: hello-dist`,
    );

    // Indexed under the name of a real subject: reported as those bytes having been altered.
    const greet = `sha256:${sha256(readFileSync(join(example, "src/greet.js")))}`;
    const repoint = (from: string, to: string) =>
      airlock.tamper((db) =>
        db
          .prepare(
            "UPDATE provenance_subjects SET subject_digest = ? WHERE bundle_digest = ? AND subject_digest = ?",
          )
          .run(to, bundleDigest, from),
      );
    const altered = `sha256:${sha256("altered greet.js\n")}`;
    expect(repoint(greet, altered).changes).toBe(1);
    try {
      expect(await refused("digest_mismatch", altered)).toContain(
        `artifact hello-dist/dist/greet.js has digest ${altered}, but the provenance records ${greet} for it`,
      );
    } finally {
      repoint(altered, greet);
    }
    await verified(greet, "--ref", "main");
  });
});

describe("independently", () => {
  /** sigstore-js, given only the public key under its hint (as src/artifacts/provenance/independent.test.ts). */
  function sigstoreVerify(bundleJson: string, hint: string, spki: Buffer) {
    const root = TrustedRoot.fromJSON({
      mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
      tlogs: [],
      certificateAuthorities: [],
      ctlogs: [],
      timestampAuthorities: [],
    });
    const key = PublicKey.fromJSON({
      rawBytes: spki.toString("base64"),
      keyDetails: "PKIX_ECDSA_P256_SHA_256",
      validFor: { start: "2020-01-01T00:00:00Z" },
    });
    const verifier = new Verifier(toTrustMaterial(root, { [hint]: key }), {
      tlogThreshold: 0,
      ctlogThreshold: 0,
      timestampThreshold: 0,
    });
    const bundle = bundleFromJSON(JSON.parse(bundleJson));
    verifier.verify(toSignedEntity(bundle));
    return bundle;
  }

  it("the stored bundle of a real job verifies with @sigstore/verify given the public key", async () => {
    const row = bundleRow(main.buildJobId);
    const [key] = airlock.query<{ public_key: string }>(
      "SELECT public_key FROM provenance_keys WHERE keyid = ?",
      row.keyid,
    );
    const publicKey: KeyObject = createPublicKey(key?.public_key ?? "");
    const spki = publicKey.export({ type: "spki", format: "der" });
    expect(row.keyid).toBe(sha256(spki));
    expect(row.digest).toBe(`sha256:${sha256(row.bundle)}`);

    const bundle = sigstoreVerify(row.bundle, row.keyid, spki);
    expect(bundle.mediaType).toBe("application/vnd.dev.sigstore.bundle.v0.3+json");
    expect(bundle.content.$case).toBe("dsseEnvelope");

    // Its subjects are the bytes a consumer downloads.
    const { out, result } = download(main.artifact.id);
    expect((await result).status).toBe(0);
    const statement = statementOf(JSON.parse(row.bundle) as Bundle);
    const subjects = Object.fromEntries(statement.subject.map((s) => [s.name, s.digest.sha256]));
    expect(subjects).toEqual({
      "hello-dist": main.artifact.digest.replace(/^sha256:/, ""),
      ...Object.fromEntries(Object.entries(hashTree(out)).map(([p, hex]) => [`hello-dist/${p}`, hex])),
    });
    expect(statement.predicate.buildDefinition.externalParameters.workflow).toMatchObject({
      repository: `airlock:${repoName}`,
      ref: "refs/heads/main",
      path: workflow,
    });

    // A statement edited after signing does not verify there either.
    const edited = JSON.parse(row.bundle) as Bundle;
    const st = statementOf(edited);
    st.predicate.buildDefinition.externalParameters.workflow.ref = "refs/heads/release";
    edited.dsseEnvelope.payload = Buffer.from(JSON.stringify(st)).toString("base64");
    expect(() => sigstoreVerify(JSON.stringify(edited), row.keyid, spki)).toThrow(
      /signature verification failed/,
    );
  });

  it("the database holds no private key material", () => {
    const bytes = airlock.databaseBytes();
    expect(bytes.length).toBeGreaterThan(0);
    expect(bytes.includes("PRIVATE KEY")).toBe(false);
    // Nor an unsealed P-256 PKCS#8 key as DER or base64: its fixed 36-byte header, before the scalar.
    const der = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey.export({
      type: "pkcs8",
      format: "der",
    });
    const header = der.subarray(0, 36);
    expect(bytes.includes(header)).toBe(false);
    expect(bytes.includes(header.toString("base64"))).toBe(false);
    // The active key's private half is there, sealed.
    const keys = airlock.query<{ private_key: string | null; retired_at: string | null }>(
      "SELECT private_key, retired_at FROM provenance_keys",
    );
    expect(keys.filter((k) => k.retired_at === null && k.private_key)).toHaveLength(1);
  });
});

describe("a later build of the same bytes", () => {
  it("from an unprotected branch does not shadow the protected build's provenance", async () => {
    // `same` points at main's commit: identical bytes, so the same digests, now with two bundles.
    repo.git("branch", "same", "main");
    const same = await runBuild("same", "workflow_dispatch");
    expect(same.artifact.digest).toBe(main.artifact.digest);

    const v = await verified(main.artifact.id, "--repo", repoName, "--ref", "main", "--protected");
    expect(v.provenance).toMatchObject({ internal: { jobId: main.buildJobId } });
    const w = await verified(main.artifact.digest, "--ref", "same");
    expect(w.provenance).toMatchObject({ internal: { jobId: same.buildJobId, refProtected: false } });
    // Neither build vouches for a ref it was not built from; the newest's reason is reported.
    await refused("policy_ref", main.artifact.digest, "--ref", "feature");
  });
});

describe("revocations reach verify", () => {
  // Last but one: revoking the only signing key ends every verification in this installation.
  const revoke = async (kind: string, subject: string) => {
    const r = await airlock.cli("revoke", kind, subject, "--reason", "e2e: provenance test");
    expect(r.status, r.stdout + r.stderr).toBe(0);
  };
  const featureGreet = () =>
    `sha256:${sha256(`${readFileSync(join(example, "src/greet.js"), "utf8")}// feature\n`)}`;

  it("artifact_revoked, runner_revoked, key_revoked", async () => {
    await verified(featureGreet(), "--ref", "feature");
    await revoke("artifact", feature.artifact.digest);
    expect(await refused("artifact_revoked", feature.artifact.id)).toContain(
      `artifact hello-dist (${feature.artifact.digest}) has been revoked`,
    );
    // The revocation names those bytes only: another subject of the same statement still verifies.
    await verified(featureGreet(), "--ref", "feature");

    const runner = feature.artifact.runnerId ?? "";
    expect(runner).toMatch(/^rnr_/);
    expect(main.artifact.runnerId).not.toBe(runner);
    await revoke("runner", runner);
    expect(await refused("runner_revoked", featureGreet())).toContain(`built on runner ${runner}`);
    await verified(main.artifact.id, "--ref", "main", "--protected");

    const { keyid } = bundleRow(main.buildJobId);
    await revoke("key", keyid);
    expect(await refused("key_revoked", main.artifact.id)).toContain(
      `signed by key ${keyid}, which has been revoked`,
    );
  });
});

describe("audit", () => {
  it("every verification above wrote artifact.verified or artifact.verification_failed with its reason", async () => {
    const records = (await airlock.audit()).filter(
      (r) => r.type === "artifact.verified" || r.type === "artifact.verification_failed",
    );
    expect(asked.length).toBeGreaterThan(20);
    expect(records.map((r) => (r.data.reason as string | null) ?? null)).toEqual(asked);
    for (const r of records) {
      expect(r.type).toBe(r.data.reason === null ? "artifact.verified" : "artifact.verification_failed");
      expect(r.actor).toBe("local-admin");
      expect(r.data.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(String(r.data.message)).not.toBe("");
      if (r.data.reason !== null) expect(String(r.data.message)).not.toMatch(/^verified/);
    }
    // The expectations asked for are recorded with the outcome.
    expect(records.some((r) => JSON.stringify(r.data.expect).includes('"protectedRefOnly":true'))).toBe(true);
  });
});
