import { buffer } from "node:stream/consumers";
import { findArtifact } from "../artifacts/catalog.js";
import { findProvenance } from "../artifacts/provenance/index.js";
import type { Digest } from "../artifacts/store.js";
import { AirlockError } from "../errors.js";
import type { ControllerDeps } from "./deps.js";

export interface Attestations {
  artifact: string;
  /** Sigstore bundles (JSON text): the SLSA provenance, then the SBOM when there is one. */
  provenance: string | null;
  sbom: string | null;
}

/** The signed attestations of an artifact: what `airlock artifacts attestations` writes out. */
export async function attestationsOf(deps: ControllerDeps, ref: string): Promise<Attestations> {
  const artifact = await findArtifact(deps.db, ref);
  const provenance = (await findProvenance(deps.db, artifact.digest as Digest))[0]?.bundle ?? null;
  const record = await deps.db
    .selectFrom("audit_events")
    .select("data")
    .where("job_id", "=", artifact.jobId)
    .where("type", "=", "sbom.attested")
    .orderBy("seq", "desc")
    .executeTakeFirst();
  let sbom: string | null = null;
  if (record) {
    const { bundle } = JSON.parse(record.data) as { bundle?: string };
    if (!bundle)
      throw new AirlockError("STORE_FAILED", `the SBOM record of ${artifact.jobId} names no bundle`);
    sbom = (await buffer(deps.artifacts.read(bundle as Digest))).toString("utf8");
  }
  return { artifact: artifact.digest, provenance, sbom };
}
