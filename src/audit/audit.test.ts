import { sql } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { type Db, openSqlite } from "../store/database.js";
import { appendAudit, listAudit, recordAudit } from "./log.js";
import { verifyAudit } from "./verify.js";

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
