import type { Kysely } from "kysely";

// Identity's tables: signing keys (private halves sealed under the master key), the per-job
// request tokens a job presents to get ID tokens, and a record of every ID token minted so a
// token can be revoked with its job. Portable types only (text, integer), as in 0001_core.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("signing_keys")
    .addColumn("kid", "text", (c) => c.primaryKey())
    .addColumn("alg", "text", (c) => c.notNull())
    .addColumn("public_jwk", "text", (c) => c.notNull())
    // Sealed envelope (JSON); set to null when the key retires, since it never signs again.
    .addColumn("private_key", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    // Stops signing at retired_at; stays in the JWKS until expires_at (retired_at + max token lifetime + grace).
    .addColumn("retired_at", "text")
    .addColumn("expires_at", "text")
    .execute();

  await db.schema
    .createTable("job_request_tokens")
    .addColumn("hash", "text", (c) => c.primaryKey())
    .addColumn("job_id", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .addColumn("revoked_at", "text")
    .execute();
  await db.schema.createIndex("job_request_tokens_job").on("job_request_tokens").column("job_id").execute();

  await db.schema
    .createTable("id_tokens")
    .addColumn("jti", "text", (c) => c.primaryKey())
    .addColumn("job_id", "text", (c) => c.notNull())
    .addColumn("kid", "text", (c) => c.notNull())
    .addColumn("audience", "text", (c) => c.notNull())
    .addColumn("subject", "text", (c) => c.notNull())
    .addColumn("issued_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text", (c) => c.notNull())
    .addColumn("revoked_at", "text")
    .execute();
  await db.schema.createIndex("id_tokens_job").on("id_tokens").column("job_id").execute();
}
