import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openSqlite } from "../store/database.js";
import { recordHash } from "./chain.js";
import { genesisHash } from "./events.js";
import { appendAudit, listAudit, recordAudit } from "./log.js";
import { auditHead, formatAnchor, parseAnchor, verifyAudit } from "./verify.js";

let db: Db;

beforeEach(async () => {
  db = await openSqlite(":memory:");
  await recordAudit(
    db,
    Array.from({ length: 5 }, (_, i) => ({
      type: `t.${i}`,
      actor: "usr_test",
      jobId: `job_${i}`,
      data: { i },
    })),
  );
});
afterEach(async () => db.destroy());

describe("audit chain", () => {
  it("verifies an untouched log and links each record to the previous", async () => {
    const v = await verifyAudit(db);
    expect(v).toMatchObject({ ok: true, records: 5, problems: [] });
    const records = await listAudit(db);
    for (let i = 1; i < records.length; i++) expect(records[i]?.prevHash).toBe(records[i - 1]?.hash);
  });

  it("names an edited record", async () => {
    await sql`update audit_events set data = '{"i":99}' where seq = 3`.execute(db);
    const v = await verifyAudit(db);
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual([expect.objectContaining({ seq: 3, kind: "edited" })]);
    expect(v.problems[0]?.message).toMatch(/record 3 .* edited/);
  });

  it("names a deleted record", async () => {
    await sql`delete from audit_events where seq = 2`.execute(db);
    const v = await verifyAudit(db);
    expect(v.problems[0]).toMatchObject({ seq: 2, kind: "missing" });
  });

  it("names reordered records", async () => {
    // Swap the content of records 2 and 4 while keeping their sequence numbers.
    await sql`update audit_events set seq = -2 where seq = 2`.execute(db);
    await sql`update audit_events set seq = 2 where seq = 4`.execute(db);
    await sql`update audit_events set seq = 4 where seq = -2`.execute(db);
    const v = await verifyAudit(db);
    expect(v.ok).toBe(false);
    expect(v.problems.map((p) => p.seq)).toContain(2);
  });

  it("detects a truncated tail", async () => {
    await sql`delete from audit_events where seq = 5`.execute(db);
    const v = await verifyAudit(db);
    expect(v.problems).toEqual([expect.objectContaining({ kind: "truncated" })]);
  });

  it("rolls back with the transaction it belongs to", async () => {
    await expect(
      db.transaction().execute(async (trx) => {
        await appendAudit(trx, { type: "doomed", actor: "usr_test" });
        throw new Error("boom");
      }),
    ).rejects.toThrow("boom");
    expect((await verifyAudit(db)).records).toBe(5);
    await recordAudit(db, { type: "after", actor: "usr_test" });
    expect(await verifyAudit(db)).toMatchObject({ ok: true, records: 6 });
  });
});

/** Rewrites every record from `fromSeq` on with freshly computed hashes, and moves the head: what an
 * attacker with write access to the database and this source code can do. */
async function rehashFrom(fromSeq: number): Promise<void> {
  const rows = await listAudit(db);
  let prev = rows.find((r) => r.seq === fromSeq - 1)?.hash ?? genesisHash;
  for (const r of rows.filter((x) => x.seq >= fromSeq)) {
    const content = { ...r, prevHash: prev };
    const { hash: _old, ...rest } = content;
    const hash = recordHash(rest);
    await sql`update audit_events set prev_hash = ${prev}, hash = ${hash} where seq = ${r.seq}`.execute(db);
    prev = hash;
  }
  await sql`update audit_head set hash = ${prev}, seq = (select max(seq) from audit_events)`.execute(db);
}

describe("audit chain attacks", () => {
  it("names a record whose hash alone was edited, once", async () => {
    await sql`update audit_events set hash = ${"f".repeat(64)} where seq = 2`.execute(db);
    const v = await verifyAudit(db);
    expect(v.problems).toEqual([expect.objectContaining({ seq: 2, kind: "edited" })]);
  });

  it("names a record edited and re-hashed by whoever edited it", async () => {
    await sql`update audit_events set data = '{"i":42}' where seq = 3`.execute(db);
    const [r3] = await listAudit(db, { afterSeq: 2, limit: 1 });
    const { hash: _h, ...content } = r3 as NonNullable<typeof r3>;
    await sql`update audit_events set hash = ${recordHash(content)} where seq = 3`.execute(db);
    const v = await verifyAudit(db);
    expect(v.ok).toBe(false);
    expect(v.problems).toEqual([expect.objectContaining({ seq: 3, kind: "edited" })]);
    expect(v.problems[0]?.message).toMatch(/record 3 .* edited and re-hashed: record 4/);
  });

  it("names a record edited into something that is not JSON, and still lists it", async () => {
    await sql`update audit_events set data = 'not json' where seq = 2`.execute(db);
    const v = await verifyAudit(db);
    expect(v.problems).toEqual([expect.objectContaining({ seq: 2, kind: "edited" })]);
    expect((await listAudit(db)).length).toBe(5);
  });

  it("names a forged record slipped between two others with a fractional or odd seq", async () => {
    const [r2] = await listAudit(db, { afterSeq: 1, limit: 1 });
    for (const seq of [2.5, "x", 0, -7]) {
      await sql`insert into audit_events (seq, id, at, type, actor, data, prev_hash, hash)
        values (${seq}, ${`evt_forged${String(seq)}`}, ${r2?.at}, 'user.created', 'usr_x', '{}', ${r2?.hash}, ${"a".repeat(64)})`.execute(
        db,
      );
    }
    const v = await verifyAudit(db);
    expect(v.problems.map((p) => p.kind)).toEqual(["inserted", "inserted", "inserted", "inserted"]);
    expect(v.problems.map((p) => p.id).sort()).toEqual(
      ["evt_forged-7", "evt_forged0", "evt_forged2.5", "evt_forgedx"].sort(),
    );
  });

  it("names records appended after the head", async () => {
    const last = (await listAudit(db)).at(-1) as NonNullable<Awaited<ReturnType<typeof listAudit>>[number]>;
    const forged = {
      ...last,
      ...{ seq: 6, id: "evt_forged", type: "user.created", runId: null, jobId: null, runnerId: null },
      prevHash: last.hash,
    };
    const { hash: _h, ...content } = forged;
    await sql`insert into audit_events (seq, id, at, type, actor, data, prev_hash, hash)
      values (6, 'evt_forged', ${forged.at}, 'user.created', ${forged.actor}, ${JSON.stringify(forged.data)}, ${last.hash}, ${recordHash(content)})`.execute(
      db,
    );
    const v = await verifyAudit(db);
    expect(v.problems).toEqual([expect.objectContaining({ seq: 6, kind: "inserted" })]);
  });

  it("names a deleted first record and a deleted head row", async () => {
    await sql`delete from audit_events where seq = 1`.execute(db);
    await sql`delete from audit_head`.execute(db);
    const v = await verifyAudit(db);
    expect(v.problems.map((p) => p.kind)).toEqual(["missing", "truncated"]);
  });

  it("names a truncated tail even when the head was moved back, given an anchor", async () => {
    const anchor = await auditHead(db);
    expect(anchor.seq).toBe(5);
    await sql`delete from audit_events where seq >= 4`.execute(db);
    await rehashFrom(4);
    expect((await verifyAudit(db)).ok).toBe(true); // the known limit, without an anchor
    const v = await verifyAudit(db, { anchors: [anchor] });
    expect(v.problems).toEqual([expect.objectContaining({ seq: 5, kind: "truncated" })]);
  });

  it("names a log emptied of every record and its head, given an anchor", async () => {
    const anchor = await auditHead(db);
    await sql`delete from audit_events`.execute(db);
    await sql`delete from audit_head`.execute(db);
    expect(await verifyAudit(db)).toMatchObject({ ok: true, records: 0 });
    expect((await verifyAudit(db, { anchors: [anchor] })).problems[0]).toMatchObject({ kind: "truncated" });
  });

  it("names a chain rewritten wholesale after an edit, given an anchor", async () => {
    const before = await auditHead(db);
    await sql`update audit_events set data = '{"i":1000}' where seq = 2`.execute(db);
    await rehashFrom(2);
    expect((await verifyAudit(db)).ok).toBe(true); // consistent again: only an anchor can tell
    const v = await verifyAudit(db, { anchors: [before] });
    expect(v.problems).toEqual([expect.objectContaining({ seq: 5, kind: "rewritten" })]);
    // New records after the anchor do not disturb it.
    await sql`update audit_events set data = '{"i":1}' where seq = 2`.execute(db);
    await rehashFrom(2);
    await recordAudit(db, { type: "later", actor: "usr_test" });
    expect(await verifyAudit(db, { anchors: [before] })).toMatchObject({ ok: true, anchors: 1 });
  });

  it("parses and prints anchors as SEQ:HASH, refusing anything else", async () => {
    const head = await auditHead(db);
    expect(parseAnchor(formatAnchor(head))).toEqual({ seq: head.seq, hash: head.hash });
    for (const bad of [
      "",
      "5",
      `0:${"a".repeat(64)}`,
      `5:${"A".repeat(64)}`,
      `5:${"a".repeat(63)}`,
      `x:${"a".repeat(64)}`,
    ]) {
      expect(() => parseAnchor(bad)).toThrow(/SEQ:HASH/);
    }
  });
});
