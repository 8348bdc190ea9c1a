import type { Kysely, Transaction } from "kysely";
import type { Db } from "../../store/database.js";
import type { Database } from "../../store/tables.js";

export type {
  ProvenanceBundleTable,
  ProvenanceKeyTable,
  ProvenanceSubjectTable,
} from "../../store/tables.js";

export type ProvenanceDatabase = Database;
export type ProvenanceDb = Kysely<ProvenanceDatabase>;
export type ProvenanceExecutor = ProvenanceDb | Transaction<ProvenanceDatabase>;

/**
 * The store seen with provenance's tables. Once store/tables.ts lists them in Database this is the
 * identity on types; until then it is the one place that widens the type.
 */
export function provenanceDb(db: Db | ProvenanceDb): ProvenanceDb {
  return db as unknown as ProvenanceDb;
}

/** The same transaction, typed for code that only knows store/tables.ts (appendAudit). */
export function storeExecutor(trx: Transaction<ProvenanceDatabase>): Transaction<Database> {
  return trx as unknown as Transaction<Database>;
}
