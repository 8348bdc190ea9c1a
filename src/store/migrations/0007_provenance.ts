import type { Kysely } from "kysely";

// Provenance's tables: artifact signing keys (private halves sealed under the master key, erased
// at retirement; public halves kept so old bundles still verify), the signed bundle of each job,
// and an index from artifact digest to bundle. Schema builder and portable types only (text), as
// in 0001_core.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("provenance_keys")
    // sha256 hex of the SPKI DER: the bundle's verificationMaterial.publicKey.hint.
    .addColumn("keyid", "text", (c) => c.primaryKey())
    .addColumn("alg", "text", (c) => c.notNull())
    .addColumn("public_key", "text", (c) => c.notNull())
    // Sealed envelope (JSON) of the PKCS#8 DER; null once retired, since it never signs again.
    .addColumn("private_key", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("retired_at", "text")
    .execute();

  await db.schema
    .createTable("provenance_bundles")
    // sha256:<hex> of the bundle JSON bytes.
    .addColumn("digest", "text", (c) => c.primaryKey())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("job_id", "text", (c) => c.notNull())
    .addColumn("runner_id", "text", (c) => c.notNull())
    .addColumn("keyid", "text", (c) => c.notNull())
    .addColumn("bundle", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("provenance_bundles_job").on("provenance_bundles").column("job_id").execute();

  await db.schema
    .createTable("provenance_subjects")
    .addColumn("bundle_digest", "text", (c) => c.notNull())
    .addColumn("subject_digest", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("provenance_subjects_pk", ["bundle_digest", "name"])
    .execute();
  await db.schema
    .createIndex("provenance_subjects_digest")
    .on("provenance_subjects")
    .column("subject_digest")
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("provenance_subjects").execute();
  await db.schema.dropTable("provenance_bundles").execute();
  await db.schema.dropTable("provenance_keys").execute();
}
