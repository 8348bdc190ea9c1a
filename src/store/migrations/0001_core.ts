import { type Kysely, SqliteAdapter } from "kysely";

// Written with the schema builder and portable types only (text, integer, bigint) so the
// PostgreSQL dialect runs this file unchanged.
export async function up(db: Kysely<unknown>): Promise<void> {
  // The one dialect difference: how an auto-incrementing key is spelled.
  const sqlite = db.getExecutor().adapter instanceof SqliteAdapter;
  await db.schema
    .createTable("repos")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull().unique())
    .addColumn("source", "text", (c) => c.notNull())
    .addColumn("protected_branches", "text", (c) => c.notNull())
    .addColumn("protected_tags", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("runs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("repo_id", "text", (c) => c.notNull().references("repos.id"))
    .addColumn("run_number", "integer", (c) => c.notNull())
    .addColumn("ref", "text", (c) => c.notNull())
    .addColumn("ref_type", "text", (c) => c.notNull())
    .addColumn("sha", "text", (c) => c.notNull())
    .addColumn("event", "text", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("workflow_path", "text", (c) => c.notNull())
    .addColumn("workflow_name", "text", (c) => c.notNull())
    .addColumn("inputs", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .addUniqueConstraint("runs_repo_number", ["repo_id", "run_number"])
    .execute();

  await db.schema
    .createTable("jobs")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("run_id", "text", (c) => c.notNull().references("runs.id"))
    .addColumn("key", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("conclusion", "text")
    .addColumn("needs", "text", (c) => c.notNull())
    .addColumn("spec", "text", (c) => c.notNull())
    .addColumn("runner_id", "text")
    .addColumn("decision", "text")
    .addColumn("detail", "text")
    .addColumn("cancel_requested_at", "text")
    .addColumn("outputs", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("updated_at", "text", (c) => c.notNull())
    .addColumn("started_at", "text")
    .addColumn("finished_at", "text")
    .execute();
  await db.schema.createIndex("jobs_state").on("jobs").columns(["state", "created_at"]).execute();
  await db.schema.createIndex("jobs_run").on("jobs").column("run_id").execute();

  await db.schema
    .createTable("steps")
    .addColumn("job_id", "text", (c) => c.notNull().references("jobs.id"))
    .addColumn("idx", "integer", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("state", "text", (c) => c.notNull())
    .addColumn("exit_code", "integer")
    .addColumn("started_at", "text")
    .addColumn("finished_at", "text")
    .addPrimaryKeyConstraint("steps_pk", ["job_id", "idx"])
    .execute();

  await db.schema
    .createTable("log_chunks")
    .addColumn("seq", "integer", (c) =>
      sqlite ? c.primaryKey().autoIncrement() : c.primaryKey().generatedByDefaultAsIdentity(),
    )
    .addColumn("job_id", "text", (c) => c.notNull())
    .addColumn("step_idx", "integer", (c) => c.notNull())
    .addColumn("stream", "text", (c) => c.notNull())
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("log_chunks_job").on("log_chunks").columns(["job_id", "seq"]).execute();

  await db.schema
    .createTable("audit_events")
    .addColumn("seq", "bigint", (c) => c.primaryKey())
    .addColumn("id", "text", (c) => c.notNull().unique())
    .addColumn("at", "text", (c) => c.notNull())
    .addColumn("type", "text", (c) => c.notNull())
    .addColumn("actor", "text", (c) => c.notNull())
    .addColumn("run_id", "text")
    .addColumn("job_id", "text")
    .addColumn("runner_id", "text")
    .addColumn("data", "text", (c) => c.notNull())
    .addColumn("prev_hash", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("audit_events_job").on("audit_events").column("job_id").execute();
  await db.schema.createIndex("audit_events_run").on("audit_events").column("run_id").execute();

  await db.schema
    .createTable("audit_head")
    .addColumn("name", "text", (c) => c.primaryKey())
    .addColumn("seq", "bigint", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull())
    .execute();

  await db.schema
    .createTable("users")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("name", "text", (c) => c.notNull().unique())
    .addColumn("role", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("disabled_at", "text")
    .execute();

  await db.schema
    .createTable("api_tokens")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("user_id", "text", (c) => c.notNull().references("users.id"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("hash", "text", (c) => c.notNull().unique())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addColumn("expires_at", "text")
    .addColumn("revoked_at", "text")
    .addColumn("last_used_at", "text")
    .execute();

  await db.schema
    .createTable("artifacts")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("job_id", "text", (c) => c.notNull())
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("digest", "text", (c) => c.notNull())
    .addColumn("size", "bigint", (c) => c.notNull())
    .addColumn("manifest", "text", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .execute();
  await db.schema.createIndex("artifacts_digest").on("artifacts").column("digest").execute();
}
