import type { Kysely } from "kysely";

// Schema builder and portable types only (text, integer, bigint), like 0001_core.
// No foreign key to jobs: flows are written in batches by the proxy and must never fail (or be
// lost) because of the order in which a job row and its first flows reach the database.
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable("egress_flows")
    .addColumn("id", "text", (c) => c.primaryKey())
    .addColumn("job_id", "text", (c) => c.notNull())
    .addColumn("run_id", "text", (c) => c.notNull())
    .addColumn("runner_id", "text", (c) => c.notNull())
    .addColumn("mode", "text", (c) => c.notNull())
    .addColumn("host", "text", (c) => c.notNull())
    .addColumn("address", "text")
    .addColumn("port", "integer", (c) => c.notNull())
    .addColumn("protocol", "text", (c) => c.notNull())
    .addColumn("bytes_up", "bigint", (c) => c.notNull())
    .addColumn("bytes_down", "bigint", (c) => c.notNull())
    .addColumn("started_at", "text", (c) => c.notNull())
    .addColumn("duration_ms", "integer", (c) => c.notNull())
    .addColumn("connect_ms", "integer")
    .addColumn("decision", "text", (c) => c.notNull())
    .addColumn("rule", "text", (c) => c.notNull())
    .addColumn("error", "text")
    .execute();
  await db.schema
    .createIndex("egress_flows_job")
    .on("egress_flows")
    .columns(["job_id", "started_at"])
    .execute();
  await db.schema.createIndex("egress_flows_run").on("egress_flows").column("run_id").execute();
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await db.schema.dropTable("egress_flows").execute();
}
