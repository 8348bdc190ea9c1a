import { chmodSync, mkdirSync } from "node:fs";
import { dirname } from "node:path";
import SqliteDatabase from "better-sqlite3";
import { Kysely, type Migration, type MigrationProvider, Migrator, SqliteDialect } from "kysely";
import { AirlockError } from "../errors.js";
import * as core0001 from "./migrations/0001_core.js";
import * as egress0002 from "./migrations/0002_egress.js";
import * as repoEgress0003 from "./migrations/0003_repo_egress.js";
import * as identity0004 from "./migrations/0004_identity.js";
import * as environments0005 from "./migrations/0005_environments.js";
import * as secrets0006 from "./migrations/0006_secrets.js";
import * as provenance0007 from "./migrations/0007_provenance.js";
import * as artifactGate0008 from "./migrations/0008_artifact_gate.js";
import * as repoOidc0009 from "./migrations/0009_repo_oidc.js";
import { SqliteConnection } from "./sqlite-connection.js";
import type { Database } from "./tables.js";

export type Db = Kysely<Database>;

/** Migrations are imported statically so the compiled CLI needs no file-system discovery. */
const migrations: Record<string, Migration> = {
  "0001_core": core0001,
  "0002_egress": egress0002,
  "0003_repo_egress": repoEgress0003,
  "0004_identity": identity0004,
  "0005_environments": environments0005,
  "0006_secrets": secrets0006,
  "0007_provenance": provenance0007,
  "0008_artifact_gate": artifactGate0008,
  "0009_repo_oidc": repoOidc0009,
};

const provider: MigrationProvider = { getMigrations: async () => migrations };

/** Opens (creating if needed) the embedded SQLite store in WAL mode and brings its schema up to date. */
export async function openSqlite(file: string): Promise<Db> {
  // The data directory must stay searchable (0711): job uids traverse it to reach their
  // workspace. The database file itself is private (0600; SQLite gives -wal/-shm the same mode).
  if (file !== ":memory:") mkdirSync(dirname(file), { recursive: true, mode: 0o711 });
  let native: SqliteDatabase.Database;
  try {
    native = new SqliteDatabase(file);
  } catch (cause) {
    throw new AirlockError("STORE_FAILED", `cannot open the database ${file}: ${(cause as Error).message}`, {
      hint: "check that the data directory exists and is writable",
      cause,
    });
  }
  if (file !== ":memory:") chmodSync(file, 0o600);
  native.pragma("journal_mode = WAL");
  native.pragma("synchronous = NORMAL");
  native.pragma("foreign_keys = ON");
  // Two processes (a server and a CLI) may share the file; wait instead of failing on a lock.
  native.pragma("busy_timeout = 5000");
  // Statement reuse and background WAL checkpoints: see sqlite-connection.ts.
  const connection = new SqliteConnection(native);
  const db = new Kysely<Database>({ dialect: new SqliteDialect({ database: connection }) });
  await migrate(db);
  connection.enableBackgroundCheckpoints();
  return db;
}

export async function migrate(db: Db): Promise<void> {
  // Domains add their migrations independently; each touches only its own tables, so one that
  // lands with a lower number after a higher one has run is still safe to apply.
  const { error, results } = await new Migrator({
    db,
    provider,
    allowUnorderedMigrations: true,
  }).migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === "Error")?.migrationName ?? "unknown";
    throw new AirlockError(
      "STORE_FAILED",
      `database migration ${failed} failed: ${(error as Error).message}`,
      {
        cause: error,
      },
    );
  }
}
