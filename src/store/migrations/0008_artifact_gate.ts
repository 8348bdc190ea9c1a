import type { Kysely } from "kysely";

// The artifact gate: the revocation list verification honours, and every promotion decision.
// Schema builder and portable types only (text, integer), as in 0001_core; times are ISO-8601
// text, lists JSON text.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("artifact_revocations")
    // "artifact" (subject: sha256:… digest), "key" (signing key id / hint), "runner" (rnr_… id)
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("reason", "text", (c) => c.notNull())
    .addColumn("revoked_by", "text", (c) => c.notNull())
    .addColumn("revoked_at", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("artifact_revocations_pk", ["kind", "subject"])
    .execute();

  await db.schema
    .createTable("artifact_promotions")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("artifact_digest", "text", (c) => c.notNull())
    .addColumn("channel", "text", (c) => c.notNull())
    // 1 promoted, 0 refused: refusals are kept too, so the table is the decision record.
    .addColumn("allowed", "integer", (c) => c.notNull())
    .addColumn("policies", "text", (c) => c.notNull())
    .addColumn("errors", "text", (c) => c.notNull())
    .addColumn("facts", "text", (c) => c.notNull())
    .addColumn("promoted_by", "text", (c) => c.notNull())
    .addColumn("promoted_at", "text", (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex("artifact_promotions_channel")
    .on("artifact_promotions")
    .columns(["channel", "promoted_at"])
    .execute();
  await db.schema
    .createIndex("artifact_promotions_digest")
    .on("artifact_promotions")
    .column("artifact_digest")
    .execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("artifact_promotions").execute();
  await db.schema.dropTable("artifact_revocations").execute();
}
