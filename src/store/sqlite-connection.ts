/**
 * The embedded SQLite connection as Kysely sees it, with two things better-sqlite3 and SQLite do
 * not do on their own and that showed as latency spikes (broker exchange p99 7 ms against a
 * 2 ms median, profiled in docs/BENCHMARKS.md):
 *
 * - Prepared statements are reused. Kysely prepares every query afresh, and each better-sqlite3
 *   statement is a native object whose finalizer runs inside V8's next scavenge: ~10 per broker
 *   exchange made young-generation GC pauses average 4.4 ms (up to 12) instead of 1.9 ms.
 * - WAL checkpoints run beside the request path, not in it. SQLite's automatic checkpoint runs
 *   inside the commit that takes the WAL past 1,000 pages: that commit copies every page written
 *   since the last one into the database and fsyncs both files (5-7 ms here), so one request in
 *   ~80 paid for the other 79. Once the connection has written a little, a worker thread with
 *   its own connection runs PASSIVE checkpoints (no writer lock, so commits go on meanwhile)
 *   every 25 ms while there is something to copy. The WAL can only start over from its beginning
 *   when a write begins with every frame copied, which a busy writer may never leave the worker;
 *   so this connection keeps its automatic checkpoint, at a higher mark, and when that fires it
 *   finds nearly everything already copied. Durability is unchanged (same pragmas, same fsyncs,
 *   fewer of them on the request path). If the worker fails, SQLite's default comes back.
 */
import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import type BetterSqlite from "better-sqlite3";
import type { SqliteDatabase, SqliteStatement } from "kysely";

export interface SqliteConnectionOptions {
  /** Most prepared statements kept (least recently used go first). Default 256. */
  statementCacheSize?: number;
  /**
   * Writes (statements returning no rows; Kysely prepares each query it runs) after
   * enableBackgroundCheckpoints() before the worker starts. Default 64.
   */
  checkpointAfterWrites?: number;
  /** The worker's pause between checkpoints while the WAL grows / while it does not. */
  checkpointIntervalMs?: { active: number; idle: number };
  /** This connection's own automatic checkpoint while the worker runs, in pages. Default 4,000. */
  backstopPages?: number;
}

/** SQLite's default wal_autocheckpoint, restored if the worker stops unexpectedly. */
const sqliteDefaultAutocheckpoint = 1000;

/** Kysely's view of a better-sqlite3 database, with the statement cache and the checkpointer. */
export class SqliteConnection implements SqliteDatabase {
  private readonly statements = new Map<string, BetterSqlite.Statement>();
  private readonly maxStatements: number;
  private checkpointer: Checkpointer | undefined;

  constructor(
    readonly native: BetterSqlite.Database,
    private readonly opts: SqliteConnectionOptions = {},
  ) {
    this.maxStatements = opts.statementCacheSize ?? 256;
  }

  /**
   * Hands checkpoints to a worker once this connection has written a little from now on (call it
   * after migrations, which would otherwise count). Only for a file in WAL mode; else a no-op.
   */
  enableBackgroundCheckpoints(): void {
    if (this.checkpointer || this.native.memory || !this.native.open) return;
    if (this.native.pragma("journal_mode", { simple: true }) !== "wal") return;
    this.checkpointer = new Checkpointer(this.native, this.opts);
  }

  prepare(sql: string): SqliteStatement {
    let stmt = this.statements.get(sql);
    // Most recently used goes last, so eviction takes the oldest.
    this.statements.delete(sql);
    if (stmt === undefined || stmt.busy) {
      // Absent, or still iterating for a stream nobody finished: a fresh statement either way.
      stmt = this.native.prepare(sql);
      if (this.statements.size >= this.maxStatements) {
        const oldest = this.statements.keys().next().value;
        if (oldest !== undefined) this.statements.delete(oldest);
      }
    }
    this.statements.set(sql, stmt);
    if (!stmt.reader) this.checkpointer?.noteWrite();
    return stmt as SqliteStatement;
  }

  close(): void {
    this.checkpointer?.close();
    this.statements.clear();
    this.native.close();
  }

  /** For tests and diagnostics. */
  get state(): { statements: number; checkpointer: CheckpointerState } {
    return { statements: this.statements.size, checkpointer: this.checkpointer?.state ?? "off" };
  }

  /** Resolves once the worker has made its first pass (tests); undefined when there is none yet. */
  checkpointerReady(): Promise<void> | undefined {
    return this.checkpointer?.ready;
  }

  /** Tests: stops the worker the way a crash would. */
  async killCheckpointer(): Promise<void> {
    await this.checkpointer?.kill();
  }
}

export type CheckpointerState = "off" | "waiting" | "running" | "failed" | "closed";

// CommonJS, evaluated: it runs the same from the compiled build and from TypeScript sources.
const workerSource = `
const { parentPort, workerData } = require("node:worker_threads");
const Database = require(workerData.driver);
const db = new Database(workerData.file, { fileMustExist: true });
let lastLog = -1;
let timer;
function pass() {
  const r = db.pragma("wal_checkpoint(PASSIVE)")[0];
  const growing = r.log !== lastLog || r.checkpointed < r.log;
  lastLog = r.log;
  timer = setTimeout(pass, growing ? workerData.activeMs : workerData.idleMs);
}
parentPort.on("message", (m) => {
  if (m !== "close") return;
  clearTimeout(timer);
  db.close();
  parentPort.close();
});
pass();
parentPort.postMessage("ready");
`;

class Checkpointer {
  state: CheckpointerState = "waiting";
  ready: Promise<void> | undefined;
  private writes = 0;
  private worker: Worker | undefined;

  constructor(
    private readonly native: BetterSqlite.Database,
    private readonly opts: SqliteConnectionOptions,
  ) {}

  noteWrite(): void {
    if (this.state !== "waiting") return;
    // Short-lived processes (a CLI command) never write enough to need a thread.
    if (++this.writes >= (this.opts.checkpointAfterWrites ?? 64)) this.start();
  }

  private start(): void {
    this.state = "running";
    const interval = this.opts.checkpointIntervalMs ?? { active: 25, idle: 1000 };
    const worker = new Worker(workerSource, {
      eval: true,
      workerData: {
        driver: createRequire(import.meta.url).resolve("better-sqlite3"),
        file: this.native.name,
        activeMs: interval.active,
        idleMs: interval.idle,
      },
    });
    this.worker = worker;
    // Never what keeps a process alive.
    worker.unref();
    this.ready = new Promise((resolve) => {
      worker.once("message", () => resolve());
      worker.once("exit", () => resolve());
    });
    worker.on("error", () => this.fallBack());
    worker.on("exit", () => this.fallBack());
    this.native.pragma(`wal_autocheckpoint = ${this.opts.backstopPages ?? 4000}`);
  }

  private fallBack(): void {
    if (this.state !== "running") return;
    this.state = "failed";
    this.worker = undefined;
    if (this.native.open) this.native.pragma(`wal_autocheckpoint = ${sqliteDefaultAutocheckpoint}`);
  }

  close(): void {
    const worker = this.worker;
    this.state = "closed";
    this.worker = undefined;
    worker?.postMessage("close");
  }

  /** Tests: stop the worker as a crash would. */
  async kill(): Promise<void> {
    await this.worker?.terminate();
  }
}
