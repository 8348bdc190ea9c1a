import type { Kysely } from "kysely";

// The secrets store and the broker's leases. Schema builder and portable types only (text,
// integer), as in 0001_core. Values are sealed envelopes (AES-256-GCM under a per-value data key
// wrapped by the master key); no column ever holds a plaintext value, and leases hold names only.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("secrets")
    // scopeKey(): org:acme | repo:acme/web | environment:acme/web:production
    .addColumn("scope", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("kind", "text", (c) => c.notNull())
    .addColumn("org", "text", (c) => c.notNull())
    .addColumn("repo", "text")
    .addColumn("environment", "text")
    .addColumn("value", "text", (c) => c.notNull())
    .addColumn("version", "integer", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("created_by", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .addColumn("updated_by", "text", (c) => c.notNull())
    .addPrimaryKeyConstraint("secrets_pk", ["scope", "name"])
    .execute();

  await db.schema
    .createTable("secret_leases")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("job_id", "text", (c) => c.notNull())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("names", "text", (c) => c.notNull())
    .addColumn("issued_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .addColumn("revoked_at", "text")
    .execute();
  await db.schema.createIndex("secret_leases_job").on("secret_leases").column("job_id").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("secret_leases").execute();
  await db.schema.dropTable("secrets").execute();
}
