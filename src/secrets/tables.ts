import type { Kysely, Transaction } from "kysely";
import type { Database } from "../store/tables.js";

/** Rows of the secrets tables (migration 0006_secrets). */
export type { SecretLeaseTable, SecretTable } from "../store/tables.js";

export type Executor = Kysely<Database> | Transaction<Database>;

/** Runs fn in the caller's transaction, or a new one, so a change and its audit record commit together. */
export async function inTransaction<T>(db: Executor, fn: (trx: Executor) => Promise<T>): Promise<T> {
  if (db.isTransaction) return fn(db);
  return (db as Kysely<Database>).transaction().execute(fn);
}
