import type { Kysely, Transaction } from "kysely";
import type { Database } from "../store/tables.js";

export type { IdTokenTable, JobRequestTokenTable, SigningKeyTable } from "../store/tables.js";

/** Anything identity's queries run on: the store, or a transaction the caller is in. */
export type IdentityExecutor = Kysely<Database> | Transaction<Database>;
