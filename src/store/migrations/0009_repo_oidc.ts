import type { Kysely } from "kysely";

/** A repository's OIDC subject customization (GitHub's include_claim_keys, immutable form). */
export async function up(db: Kysely<unknown>): Promise<void> {
  await db.schema.alterTable("repos").addColumn("oidc_subject", "text").execute();
}
