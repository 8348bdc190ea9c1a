import { findArtifact } from "../artifacts/catalog.js";
import { findProvenance, type Revocations, verifyArtifact } from "../artifacts/provenance/index.js";
import type { Digest } from "../artifacts/store.js";
import { recordAudit } from "../audit/log.js";
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
}

/** Where revocations come from; the artifact gate supplies the real list. */
export type RevocationSource = () => Promise<Revocations>;

let revocationSource: RevocationSource = async () => ({});

export function useRevocations(source: RevocationSource): void {
  revocationSource = source;
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
    const r = await verifyArtifact({
      bundle: JSON.parse(newest.bundle) as unknown,
      artifact: { digest, name: newest.name },
      trustedKeys: await provenanceKeys(deps).trustedKeys(),
      revocations: await revocationSource(),
      expect: {
        builderId: builderId(deps),
        ...(req.repo ? { repo: req.repo.includes(":") ? req.repo : repositoryUri(req.repo) } : {}),
        ...(req.ref ? { ref: req.ref } : {}),
        ...(req.workflow ? { workflow: req.workflow } : {}),
        ...(req.protectedRefOnly ? { protectedRefOnly: true } : {}),
      },
    });
    if (!r.ok) return { ok: false, digest, reason: r.reason, message: r.message, bundle: newest.digest };
    return {
      ok: true,
      digest,
      subject: r.subject.name,
      bundle: newest.digest,
      message: `${r.subject.name} (${digest}) was built by ${r.provenance.builderId} from ${r.provenance.external.workflow.repository}@${r.provenance.external.workflow.ref}; provenance signed by key ${r.keyid.slice(0, 16)}`,
      provenance: { external: r.provenance.external, internal: r.provenance.internal },
    };
  }
}

export function verificationError(v: Verification): AirlockError {
  return new AirlockError("ARTIFACT_INVALID", `verification failed (${v.reason}): ${v.message}`);
}
