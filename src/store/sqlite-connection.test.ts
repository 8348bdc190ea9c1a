import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import BetterSqlite from "better-sqlite3";
import { Kysely, SqliteDialect, sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { openSqlite } from "./database.js";
import { SqliteConnection, type SqliteConnectionOptions } from "./sqlite-connection.js";

let dir: string;
const open: SqliteConnection[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "airlock-sqlite-"));
});
afterEach(async () => {
  for (const c of open.splice(0)) if (c.native.open) c.close();
  await rm(dir, { recursive: true, force: true });
});

function connect(opts: SqliteConnectionOptions = {}, file = join(dir, "t.db")): SqliteConnection {
  const native = new BetterSqlite(file);
  native.pragma("journal_mode = WAL");
  native.pragma("synchronous = NORMAL");
  const c = new SqliteConnection(native, opts);
  open.push(c);
  return c;
}

async function until(check: () => boolean | Promise<boolean>, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe("statement cache", () => {
  it("reuses a prepared statement per SQL text, bounded, least recently used out first", () => {
    const c = connect({ statementCacheSize: 2 });
    c.native.exec("create table t (id integer primary key, v text)");
    const a = c.prepare("select 1");
    expect(c.prepare("select 1")).toBe(a);
    const b = c.prepare("select 2");
    expect(c.prepare("select 1")).toBe(a); // a is now the most recent
    c.prepare("select 3"); // evicts b
    expect(c.state.statements).toBe(2);
    expect(c.prepare("select 1")).toBe(a);
    expect(c.prepare("select 2")).not.toBe(b);
  });

  it("gives a fresh statement while the cached one is still iterating", () => {
    const c = connect();
    c.native.exec("create table t (id integer primary key)");
    c.native.exec("insert into t (id) values (1), (2), (3)");
    const q = "select id from t order by id";
    const first = c.prepare(q);
    const rows = first.iterate([]);
    expect(rows.next().value).toEqual({ id: 1 });
    const second = c.prepare(q);
    expect(second).not.toBe(first);
    expect(second.all([])).toEqual([{ id: 1 }, { id: 2 }, { id: 3 }]);
    expect([...rows]).toEqual([{ id: 2 }, { id: 3 }]);
  });

  it("serves Kysely: parameters, writes, transactions, rollbacks and streams", async () => {
    const c = connect();
    // biome-ignore lint/suspicious/noExplicitAny: an ad hoc table for this test only
    const db = new Kysely<any>({ dialect: new SqliteDialect({ database: c }) });
    await sql`create table t (id integer primary key, v text)`.execute(db);
    for (let i = 0; i < 5; i++)
      await db
        .insertInto("t")
        .values({ id: i, v: `v${i}` })
        .execute();
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto("t").values({ id: 99, v: "gone" }).execute();
        throw new Error("roll back");
      }),
    ).rejects.toThrow("roll back");
    const rows = await db.selectFrom("t").select("v").where("id", ">=", 3).orderBy("id").execute();
    expect(rows.map((r) => r.v)).toEqual(["v3", "v4"]);
    // A stream left half-read keeps its statement busy; the same query still runs meanwhile.
    const streamed: unknown[] = [];
    for await (const r of db.selectFrom("t").select("id").orderBy("id").stream()) {
      streamed.push(r);
      if (streamed.length === 2) break;
    }
    expect(streamed).toEqual([{ id: 0 }, { id: 1 }]);
    const all = await db.selectFrom("t").select("id").orderBy("id").execute();
    expect(all).toHaveLength(5);
    await db.destroy();
    expect(c.native.open).toBe(false);
  });
});

describe("background checkpoints", () => {
  const fast = { checkpointAfterWrites: 5, checkpointIntervalMs: { active: 5, idle: 20 } };

  /** Writes as Kysely does: one prepare() per statement executed. */
  function fill(c: SqliteConnection, rows: number, from = 0): void {
    c.prepare("create table if not exists t (id integer primary key, v text)").run([]);
    for (let i = from; i < from + rows; i += 10) {
      c.prepare("begin").run([]);
      for (let j = i; j < i + 10; j++)
        c.prepare("insert into t (id, v) values (?, ?)").run([j, "x".repeat(1000)]);
      c.prepare("commit").run([]);
    }
  }

  it("starts only after enableBackgroundCheckpoints() and some writes, and copies the WAL into the database", async () => {
    const c = connect(fast);
    fill(c, 100);
    expect(c.state.checkpointer).toBe("off");
    c.enableBackgroundCheckpoints();
    expect(c.state.checkpointer).toBe("waiting");
    const dbFile = join(dir, "t.db");
    const before = (await stat(dbFile)).size;
    fill(c, 2000, 100);
    expect(c.state.checkpointer).toBe("running");
    await c.checkpointerReady();
    // ~2 MB went into the WAL; the worker, not this connection (its own mark is now 4,000 pages),
    // moves it into the database file.
    expect(c.native.pragma("wal_autocheckpoint", { simple: true })).toBe(4000);
    await until(async () => (await stat(dbFile)).size > before + 1_500_000);
  });

  it("loses nothing: rows written while the worker checkpoints are all there after reopening", async () => {
    const file = join(dir, "t.db");
    const c = connect(fast, file);
    c.enableBackgroundCheckpoints();
    for (let round = 0; round < 20; round++) {
      fill(c, 200, round * 200);
      await new Promise((r) => setTimeout(r, 3));
    }
    expect(c.state.checkpointer).toBe("running");
    c.close();
    expect(c.state.checkpointer).toBe("closed");
    const again = new BetterSqlite(file);
    try {
      expect(again.pragma("integrity_check", { simple: true })).toBe("ok");
      expect(again.prepare("select count(*) as n from t").get()).toEqual({ n: 4000 });
    } finally {
      again.close();
    }
  });

  it("keeps the WAL bounded by its own mark when writes never pause for the worker", async () => {
    // The worker makes one pass and then sleeps, as a worker starved of gaps between writes would.
    const c = connect({
      ...fast,
      backstopPages: 300,
      checkpointIntervalMs: { active: 60_000, idle: 60_000 },
    });
    c.enableBackgroundCheckpoints();
    fill(c, 100);
    await c.checkpointerReady();
    fill(c, 6000, 100); // ~6 MB, without yielding once
    const wal = (await stat(join(dir, "t.db-wal"))).size;
    // ~300 pages of 4 KiB; without the mark it reaches 12 MB.
    expect(wal).toBeLessThan(2_000_000);
    expect(c.prepare("select count(*) as n from t").all([])).toEqual([{ n: 6100 }]);
  });

  it("falls back to SQLite's own checkpoints if the worker dies", async () => {
    const c = connect(fast);
    c.enableBackgroundCheckpoints();
    fill(c, 100);
    await c.checkpointerReady();
    expect(c.native.pragma("wal_autocheckpoint", { simple: true })).toBe(4000);
    await c.killCheckpointer();
    await until(() => c.state.checkpointer === "failed");
    expect(c.native.pragma("wal_autocheckpoint", { simple: true })).toBe(1000);
    fill(c, 100, 100);
  });

  it("never runs for an in-memory database or a rollback journal", () => {
    const mem = new SqliteConnection(new BetterSqlite(":memory:"), fast);
    open.push(mem);
    mem.enableBackgroundCheckpoints();
    expect(mem.state.checkpointer).toBe("off");
    const native = new BetterSqlite(join(dir, "j.db"));
    const journal = new SqliteConnection(native, fast);
    open.push(journal);
    journal.enableBackgroundCheckpoints();
    expect(journal.state.checkpointer).toBe("off");
  });

  it("openSqlite turns it on after migrating, so opening alone starts no thread", async () => {
    const db = await openSqlite(join(dir, "airlock.db"));
    const mark = async () =>
      (await sql<{ wal_autocheckpoint: number }>`pragma wal_autocheckpoint`.execute(db)).rows[0]
        ?.wal_autocheckpoint;
    try {
      // A fresh store ran every migration: still SQLite's own checkpoints, no worker.
      expect(await mark()).toBe(1000);
      await sql`create table t (id integer primary key)`.execute(db);
      for (let i = 0; i < 64; i++) await sql`insert into t (id) values (${i})`.execute(db);
      expect(await mark()).toBe(4000);
    } finally {
      await db.destroy();
    }
  });
});
