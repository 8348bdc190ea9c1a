import type { Kysely } from "kysely";
import { recordAudit } from "../../audit/log.js";
import { type Clock, systemClock } from "../../clock.js";
import { maskText } from "../../secrets/masker/masker.js";
import type { SecretSet } from "../../secrets/masker/secret-set.js";
import type { Database } from "../../store/tables.js";
import { type ScanResult, secretsFoundError } from "./scan.js";

export interface UploadContext {
  /** The artifact's name as the job gave it (masked before it is recorded). */
  artifact: string;
  actor: string;
  runId?: string | null;
  jobId?: string | null;
  runnerId?: string | null;
}

/**
 * Returns when the scan found nothing; otherwise records `artifact.upload_blocked` (file paths
 * and secret names, never values) in an audit transaction of its own and throws
 * `secretsFoundError`. Call it before anything of the upload reaches the artifact store.
 */
export async function assertNoSecrets(
  db: Kysely<Database>,
  secrets: SecretSet,
  result: ScanResult,
  ctx: UploadContext,
  clock: Clock = systemClock,
): Promise<void> {
  if (result.hits.length === 0) return;
  await recordAudit(
    db,
    {
      type: "artifact.upload_blocked",
      actor: ctx.actor,
      runId: ctx.runId ?? null,
      jobId: ctx.jobId ?? null,
      runnerId: ctx.runnerId ?? null,
      data: {
        artifact: maskText(secrets, ctx.artifact, { detectCredentials: false }),
        reason: "secret",
        hits: result.hits.map((h) => ({ path: h.path, secretName: h.secretName })),
        files: result.files,
        bytes: result.bytes,
      },
    },
    clock,
  );
  throw secretsFoundError(result.hits);
}
