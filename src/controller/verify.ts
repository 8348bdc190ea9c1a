import { findArtifact } from "../artifacts/catalog.js";
import { type Promotion, promote, revocationList, type VerifiedFacts } from "../artifacts/gate/index.js";
import { findProvenance, type VerifyResult, verifyArtifact } from "../artifacts/provenance/index.js";
import type { Digest } from "../artifacts/store.js";
import { recordAudit } from "../audit/log.js";
import type { Principal } from "../auth/principal.js";
import { AirlockError } from "../errors.js";
import type { ControllerDeps } from "./deps.js";
import { builderId, provenanceKeys, repositoryUri } from "./publish.js";

export interface VerifyRequest {
  /** An artifact id (art_…) or any subject digest (an artifact manifest or one of its files). */
  artifact: string;
  repo?: string;
  ref?: string;
  workflow?: string;
  protectedRefOnly?: boolean;
}

export interface Verification {
  ok: boolean;
  digest: string;
  reason?: string;
  message: string;
  subject?: string;
  bundle?: string;
  provenance?: Record<string, unknown>;
  /** What promotion decides on; present when verification succeeded. */
  facts?: VerifiedFacts;
}

/**
 * `airlock verify`: find the signed provenance that names the artifact and check it end to end —
 * digest, signature, a trusted and unrevoked key, subject, builder, revocations, and what the
 * caller expects of repository, ref, workflow and ref protection. Every outcome is audited.
 */
export async function verifyStoredArtifact(
  deps: ControllerDeps,
  req: VerifyRequest,
  actor: string,
): Promise<Verification> {
  const digest = (
    req.artifact.startsWith("sha256:") ? req.artifact : (await findArtifact(deps.db, req.artifact)).digest
  ) as Digest;
  const stored = await findProvenance(deps.db, digest);
  const result = await check();
  await recordAudit(
    deps.db,
    {
      type: result.ok ? "artifact.verified" : "artifact.verification_failed",
      actor,
      data: {
        digest,
        reason: result.reason ?? null,
        message: result.message,
        expect: { ...req, artifact: undefined },
      },
    },
    deps.clock,
  );
  return result;

  async function check(): Promise<Verification> {
    const newest = stored[0];
    if (!newest) {
      return { ok: false, digest, reason: "no_provenance", message: `no signed provenance names ${digest}` };
    }
    const trustedKeys = await provenanceKeys(deps).trustedKeys();
    const revocations = await revocationList(deps.db);
    const expect = {
      builderId: builderId(deps),
      ...(req.repo ? { repo: req.repo.includes(":") ? req.repo : repositoryUri(req.repo) } : {}),
      ...(req.ref ? { ref: req.ref } : {}),
      ...(req.workflow ? { workflow: req.workflow } : {}),
      ...(req.protectedRefOnly ? { protectedRefOnly: true } : {}),
    };
    // The same bytes can be built more than once (content addressing): any one signed statement
    // that passes vouches for them. Checking only the newest let a later build of identical bytes
    // from another branch shadow a protected build's provenance. On failure, the newest's reason.
    let firstFailure: Verification | undefined;
    for (const candidate of stored) {
      const r = verifyArtifact({
        bundle: parseJson(candidate.bundle),
        artifact: { digest, name: candidate.name },
        trustedKeys,
        revocations,
        expect,
      });
      if (r.ok) return verified(r, candidate.digest);
      firstFailure ??= { ok: false, digest, reason: r.reason, message: r.message, bundle: candidate.digest };
    }
    return firstFailure as Verification;
  }

  function verified(r: Extract<VerifyResult, { ok: true }>, bundle: string): Verification {
    return {
      ok: true,
      digest,
      subject: r.subject.name,
      bundle,
      message: `${r.subject.name} (${digest}) was built by ${r.provenance.builderId} from ${r.provenance.external.workflow.repository}@${r.provenance.external.workflow.ref}; provenance signed by key ${r.keyid.slice(0, 16)}`,
      provenance: { external: r.provenance.external, internal: r.provenance.internal },
      facts: {
        repo: r.provenance.external.workflow.repository,
        ref: r.provenance.external.workflow.ref,
        refProtected: r.provenance.internal.refProtected,
        event: r.provenance.internal.eventName,
        workflow: r.provenance.external.workflow.path,
        builderId: r.provenance.builderId,
        runnerId: r.provenance.internal.runnerId,
        keyId: r.keyid,
      },
    };
  }
}

/** A stored bundle that is not JSON is an invalid bundle (verifyArtifact says so), not a crash. */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function verificationError(v: Verification): AirlockError {
  return new AirlockError("ARTIFACT_INVALID", `verification failed (${v.reason}): ${v.message}`);
}

/**
 * `airlock promote`: only a verified artifact, and only if Cedar's Promote policies accept its
 * provenance for the channel. The decision (either way) is recorded and audited by the gate.
 */
export async function promoteArtifact(
  deps: ControllerDeps,
  req: { artifact: string; channel: string },
  principal: Principal,
): Promise<Promotion> {
  const v = await verifyStoredArtifact(deps, { artifact: req.artifact }, principal.userName);
  if (!v.ok || !v.facts) throw verificationError(v);
  return promote(
    { db: deps.db, engine: deps.policy, clock: deps.clock },
    { artifactDigest: v.digest as Digest, channel: req.channel, verified: v.facts },
    { id: principal.userName, roles: [principal.role] },
  );
}
