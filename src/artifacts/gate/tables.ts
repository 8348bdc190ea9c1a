/**
 * Row shapes of the gate's tables (migration 0008_artifact_gate). The store's `Database`
 * interface lists them as `artifact_revocations` and `artifact_promotions`; until it does, the
 * gate's functions take a database typed with `GateDatabase`.
 */
import type { Kysely, Transaction } from "kysely";
import type { Database } from "../../store/tables.js";

export type { ArtifactPromotionTable, ArtifactRevocationTable } from "../../store/tables.js";

export type GateDatabase = Database;
export type GateDb = Kysely<GateDatabase>;
export type GateExecutor = Kysely<GateDatabase> | Transaction<GateDatabase>;

/**
 * The audit log takes the store's own executor type. Once `Database` lists the gate's tables,
 * GateDatabase is Database and this is the identity; until then it only narrows the row types.
 */
export const auditExecutor = (trx: Transaction<GateDatabase>): Transaction<Database> =>
  trx as unknown as Transaction<Database>;
