import type { Kysely } from "kysely";

/** Deployment environments with protection rules, approvals of gated jobs, and each job's gate. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("environments")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("repo_id", "text", (c) => c.notNull().references("repos.id"))
    .addColumn("name", "text", (c) => c.notNull())
    .addColumn("branches", "text", (c) => c.notNull())
    .addColumn("tags", "text", (c) => c.notNull())
    .addColumn("required_approvals", "integer", (c) => c.notNull())
    .addColumn("approvers", "text", (c) => c.notNull())
    .addColumn("prevent_self_review", "integer", (c) => c.notNull())
    .addColumn("wait_seconds", "integer", (c) => c.notNull())
    .addColumn("approval_ttl_seconds", "integer", (c) => c.notNull())
    .addColumn("created_at", "text", (c) => c.notNull())
    .addUniqueConstraint("environments_repo_name", ["repo_id", "name"])
    .execute();

  await db.schema
    .createTable("approvals")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("job_id", "text", (c) => c.notNull().references("jobs.id"))
    .addColumn("user_id", "text", (c) => c.notNull())
    .addColumn("user_name", "text", (c) => c.notNull())
    .addColumn("decision", "text", (c) => c.notNull())
    .addColumn("comment", "text")
    .addColumn("created_at", "text", (c) => c.notNull())
    .addUniqueConstraint("approvals_job_user", ["job_id", "user_id"])
    .execute();

  // The environment's rules as they were when the job was queued: later edits do not move it.
  await db.schema.alterTable("jobs").addColumn("gate", "text").execute();
}
