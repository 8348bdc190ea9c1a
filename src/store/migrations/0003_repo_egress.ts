import type { Kysely } from "kysely";

/** A repository's default egress allowlist, merged into every job's own `egress.allow`. */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .alterTable("repos")
    .addColumn("egress_allow", "text", (c) => c.notNull().defaultTo("[]"))
    .execute();
}
