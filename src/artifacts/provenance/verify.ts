import { createHash, type KeyObject } from "node:crypto";
import type { Digest } from "../store.js";
import { parseBundle } from "./bundle.js";
import { decodeBase64, inTotoPayloadType, verifyEnvelopeSignature } from "./dsse.js";
import type { InTotoStatement } from "./schema.js";
import { type AirlockProvenance, readAirlockProvenance } from "./statement.js";

export type VerifyFailureReason =
  | "bundle_invalid"
  | "digest_mismatch"
  | "signature_invalid"
  | "unknown_key"
  | "key_revoked"
  | "runner_revoked"
  | "artifact_revoked"
  | "subject_mismatch"
  | "builder_mismatch"
  | "policy_repo"
  | "policy_ref"
  | "policy_workflow"
  | "policy_unprotected_ref"
  | "statement_invalid";

export type VerifyResult =
  | {
      ok: true;
      statement: InTotoStatement;
      provenance: AirlockProvenance;
      /** The key that signed. */
      keyid: string;
      /** The subject the artifact matched. */
      subject: { name: string; digest: Digest };
    }
  | { ok: false; reason: VerifyFailureReason; message: string };

/**
 * The artifact being verified. With bytes the digest is computed here; with both, they must
 * agree. A name (e.g. the file name) lets a changed artifact be reported as such rather than as
 * "not a subject".
 */
export type ArtifactRef =
  | { bytes: Uint8Array; digest?: Digest; name?: string }
  | { digest: Digest; bytes?: undefined; name?: string };

export interface Revocations {
  /** Artifact digests (sha256:<hex>). */
  artifacts?: Iterable<string>;
  /** Key hints. */
  keys?: Iterable<string>;
  /** Runner ids (rnr_…). */
  runners?: Iterable<string>;
}

export interface VerifyExpectations {
  /** The builder id this deployment signs as; anything else is refused. */
  builderId: string;
  /** Repository URI as recorded (trailing "/" and ".git" ignored). */
  repo?: string;
  /** Full ref (refs/heads/main) or a short branch/tag name. */
  ref?: string;
  /** Workflow path, e.g. .github/workflows/release.yml. */
  workflow?: string;
  /** Only accept artifacts built from a protected ref. */
  protectedRefOnly?: boolean;
}

export interface VerifyOptions {
  bundle: unknown;
  artifact: ArtifactRef;
  trustedKeys: readonly { keyid: string; publicKey: KeyObject }[];
  revocations?: Revocations;
  expect: VerifyExpectations;
}

const fail = (reason: VerifyFailureReason, message: string): VerifyResult => ({ ok: false, reason, message });
const short = (hex: string) => hex.slice(0, 12);
const asSet = (xs: Iterable<string> | undefined) =>
  xs instanceof Set ? (xs as Set<string>) : new Set(xs ?? []);

/**
 * Verifies an artifact against its provenance bundle. Order matters: nothing in the statement is
 * believed until the signature over it has verified with a trusted, unrevoked key.
 */
export function verifyArtifact(opts: VerifyOptions): VerifyResult {
  const { expect } = opts;
  const revoked = {
    artifacts: asSet(opts.revocations?.artifacts),
    keys: asSet(opts.revocations?.keys),
    runners: asSet(opts.revocations?.runners),
  };

  // 1. The artifact's own digest.
  const art = opts.artifact;
  let artifactHex: string;
  if (art.bytes !== undefined) {
    artifactHex = createHash("sha256").update(art.bytes).digest("hex");
    if (art.digest !== undefined && art.digest !== `sha256:${artifactHex}`) {
      return fail(
        "digest_mismatch",
        `the artifact's content has digest sha256:${artifactHex}, not the expected ${art.digest}: it was altered`,
      );
    }
  } else {
    const m = /^sha256:([0-9a-f]{64})$/.exec(art.digest);
    if (!m) return fail("digest_mismatch", `"${art.digest}" is not a sha256:<64 hex> digest`);
    artifactHex = m[1] as string;
  }

  // 2. The bundle's shape.
  const parsed = parseBundle(opts.bundle);
  if (!parsed.ok) {
    return fail(
      "bundle_invalid",
      `the bundle is not a Sigstore v0.3 public-key DSSE bundle: ${parsed.errors.join("; ")}`,
    );
  }
  const bundle = parsed.value;
  const env = bundle.dsseEnvelope;
  const hint = bundle.verificationMaterial.publicKey.hint;

  // 3. The key: trusted, then not revoked.
  const key = opts.trustedKeys.find((k) => k.keyid === hint);
  if (!key) {
    return fail(
      "unknown_key",
      `the bundle was signed by key ${hint}, which is not one of the ${opts.trustedKeys.length} trusted provenance keys`,
    );
  }
  if (revoked.keys.has(hint)) {
    return fail("key_revoked", `the bundle was signed by key ${hint}, which has been revoked`);
  }

  // 4. The signature over PAE(payloadType, payload).
  const payload = decodeBase64(env.payload);
  if (!payload) return fail("bundle_invalid", "the DSSE payload is not base64");
  const sig = env.signatures[0]?.sig ?? "";
  if (!verifyEnvelopeSignature(payload, env.payloadType, sig, key.publicKey)) {
    return fail(
      "signature_invalid",
      `the DSSE signature does not verify with key ${hint}: the statement or its signature was altered after signing`,
    );
  }

  // 5. The statement (now authenticated): in-toto v1, SLSA v1, Airlock's build type.
  if (env.payloadType !== inTotoPayloadType) {
    return fail("statement_invalid", `the payload type is ${env.payloadType}, expected ${inTotoPayloadType}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(payload.toString("utf8"));
  } catch {
    return fail("statement_invalid", "the signed payload is not JSON");
  }
  const read = readAirlockProvenance(json);
  if (!read.ok)
    return fail("statement_invalid", `the statement is not valid provenance: ${read.errors.join("; ")}`);
  const prov = read.value;

  // 6. The artifact is a subject.
  const subject = prov.subjects.find((s) => s.sha256 === artifactHex);
  if (!subject) {
    const named = art.name !== undefined ? prov.subjects.find((s) => s.name === art.name) : undefined;
    if (named) {
      return fail(
        "digest_mismatch",
        `artifact ${art.name} has digest sha256:${artifactHex}, but the provenance records sha256:${named.sha256} for it: the artifact was altered after signing`,
      );
    }
    const listed = prov.subjects.map((s) => `${s.name} (sha256:${short(s.sha256)}…)`).join(", ");
    return fail(
      "subject_mismatch",
      `artifact sha256:${artifactHex} is not a subject of this provenance, which covers: ${listed}`,
    );
  }
  if (revoked.artifacts.has(`sha256:${artifactHex}`)) {
    return fail("artifact_revoked", `artifact ${subject.name} (sha256:${artifactHex}) has been revoked`);
  }

  // 7. Who built it.
  if (prov.builderId !== expect.builderId) {
    return fail(
      "builder_mismatch",
      `the artifact was built by ${prov.builderId}, expected builder ${expect.builderId}`,
    );
  }
  const int = prov.internal;
  if (revoked.runners.has(int.runnerId)) {
    return fail(
      "runner_revoked",
      `the artifact was built on runner ${int.runnerId} (job ${int.jobId}), which has been revoked`,
    );
  }

  // 8. Policy: where it came from.
  const wf = prov.external.workflow;
  if (expect.repo !== undefined && normaliseRepo(wf.repository) !== normaliseRepo(expect.repo)) {
    return fail(
      "policy_repo",
      `the artifact was built from repository ${wf.repository}, expected ${expect.repo}`,
    );
  }
  if (expect.ref !== undefined && !refMatches(wf.ref, expect.ref)) {
    return fail("policy_ref", `the artifact was built from ref ${wf.ref}, expected ${expect.ref}`);
  }
  if (expect.workflow !== undefined && normalisePath(wf.path) !== normalisePath(expect.workflow)) {
    return fail(
      "policy_workflow",
      `the artifact was built by workflow ${wf.path}, expected ${expect.workflow}`,
    );
  }
  if (expect.protectedRefOnly && !int.refProtected) {
    return fail(
      "policy_unprotected_ref",
      `the artifact was built from ${wf.ref}, which was not a protected ref when the job ran`,
    );
  }

  return {
    ok: true,
    statement: prov.statement,
    provenance: prov,
    keyid: hint,
    subject: { name: subject.name, digest: `sha256:${subject.sha256}` },
  };
}

function normaliseRepo(r: string): string {
  return r.replace(/\/+$/, "").replace(/\.git$/, "");
}

function normalisePath(p: string): string {
  return p.replace(/^\.\//, "");
}

/** "main" matches refs/heads/main, "v1.2" matches refs/tags/v1.2; a full ref must match exactly. */
function refMatches(actual: string, expected: string): boolean {
  if (expected.startsWith("refs/")) return actual === expected;
  return actual === `refs/heads/${expected}` || actual === `refs/tags/${expected}`;
}
