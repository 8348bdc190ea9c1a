import { createHash } from "node:crypto";
import { appendAudit } from "../../audit/log.js";
import { type Clock, systemClock } from "../../clock.js";
import type { Db } from "../../store/database.js";
import type { Digest } from "../store.js";
import { type SigstoreBundle, signStatement } from "./bundle.js";
import type { ProvenanceKeys } from "./keys.js";
import type { InTotoStatement } from "./schema.js";
import { buildStatement, type ProvenanceInput } from "./statement.js";
import { type ProvenanceDb, provenanceDb, storeExecutor } from "./tables.js";

export interface WrittenProvenance {
  /** sha256 of the bundle JSON bytes; the row's key. */
  digest: Digest;
  statement: InTotoStatement;
  bundle: SigstoreBundle;
  /** The exact JSON stored (and served as `<artifact>.sigstore.json`). */
  json: string;
  keyid: string;
}

/**
 * After a job: build the statement, sign it with the active key (in the controller; the sandbox
 * is gone by then and never held the key), store the bundle and its subject index, and audit it,
 * all in one transaction.
 */
export async function writeProvenance(
  db: Db | ProvenanceDb,
  keys: ProvenanceKeys,
  input: ProvenanceInput,
  clock: Clock = systemClock,
): Promise<WrittenProvenance> {
  const pdb = provenanceDb(db);
  const statement = buildStatement(input);
  const key = await keys.activeKey();
  const bundle = signStatement(statement, key);
  const json = JSON.stringify(bundle);
  const digest: Digest = `sha256:${createHash("sha256").update(json).digest("hex")}`;
  const subjects = statement.subject.map((s) => ({
    name: s.name ?? "_",
    digest: `sha256:${s.digest.sha256}`,
  }));
  await pdb.transaction().execute(async (trx) => {
    await trx
      .insertInto("provenance_bundles")
      .values({
        digest,
        run_id: input.run.id,
        job_id: input.job.id,
        runner_id: input.runnerId,
        keyid: key.keyid,
        bundle: json,
        created_at: clock.now().toISOString(),
      })
      .execute();
    await trx
      .insertInto("provenance_subjects")
      .values(subjects.map((s) => ({ bundle_digest: digest, subject_digest: s.digest, name: s.name })))
      .execute();
    await appendAudit(
      storeExecutor(trx),
      {
        type: "provenance.signed",
        actor: "system",
        runId: input.run.id,
        jobId: input.job.id,
        runnerId: input.runnerId,
        data: { bundle: digest, keyid: key.keyid, builderId: input.builderId, subjects },
      },
      clock,
    );
  });
  return { digest, statement, bundle, json, keyid: key.keyid };
}

export interface StoredProvenance {
  digest: Digest;
  runId: string;
  jobId: string;
  runnerId: string;
  keyid: string;
  /** Bundle JSON text, as signed and stored. */
  bundle: string;
  createdAt: string;
  /** The subject name this artifact has in the statement. */
  name: string;
}

/** Every stored bundle with the artifact among its subjects, newest first. */
export async function findProvenance(db: Db | ProvenanceDb, artifact: Digest): Promise<StoredProvenance[]> {
  const rows = await provenanceDb(db)
    .selectFrom("provenance_subjects as s")
    .innerJoin("provenance_bundles as b", "b.digest", "s.bundle_digest")
    .select([
      "b.digest",
      "b.run_id",
      "b.job_id",
      "b.runner_id",
      "b.keyid",
      "b.bundle",
      "b.created_at",
      "s.name",
    ])
    .where("s.subject_digest", "=", artifact)
    .orderBy("b.created_at", "desc")
    .execute();
  return rows.map((r) => ({
    digest: r.digest as Digest,
    runId: r.run_id,
    jobId: r.job_id,
    runnerId: r.runner_id,
    keyid: r.keyid,
    bundle: r.bundle,
    createdAt: r.created_at,
    name: r.name,
  }));
}
