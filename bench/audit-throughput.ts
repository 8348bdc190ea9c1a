/**
 * Audit append throughput on a file-backed SQLite (WAL, synchronous=NORMAL, as the controller
 * opens it): records in transactions of 1000, against one transaction per record; then
 * verifyAudit over the whole chain, against reading the same pages without hashing.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { AuditEventInput } from "../src/audit/events.js";
import { appendAudit, toRecord } from "../src/audit/log.js";
import { verifyAudit } from "../src/audit/verify.js";
import { type Db, openSqlite } from "../src/store/database.js";
import { log, size } from "./lib/env.js";
import { row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

function event(i: number): AuditEventInput {
  return {
    type: i % 3 === 0 ? "job.running" : i % 3 === 1 ? "job.succeeded" : "job.torn_down",
    actor: "rnr_bench0000000000000000",
    runId: `run_bench${Math.floor(i / 10)}`,
    jobId: `job_bench${i}`,
    runnerId: "rnr_bench0000000000000000",
    data: { from: "provisioning", job: "build", uid: 200_000 + (i % 1024) },
  };
}

/** Reads every record page by page exactly as verifyAudit does, minus the hashing and checks. */
async function readAll(db: Db): Promise<number> {
  let after = 0;
  let count = 0;
  for (;;) {
    const rows = await db
      .selectFrom("audit_events")
      .selectAll()
      .where("seq", ">", after)
      .orderBy("seq", "asc")
      .limit(5000)
      .execute();
    if (rows.length === 0) return count;
    for (const r of rows) {
      const rec = toRecord(r);
      after = rec.seq;
      count++;
    }
  }
}

export const auditThroughput: Bench = {
  name: "audit-throughput",
  description: "appendAudit batched (1000/txn) vs unbatched (1/txn), verifyAudit throughput",
  async run() {
    const total = size("AUDIT_RECORDS", 100_000, 20_000);
    const batch = size("AUDIT_BATCH", 1000, 1000);
    const single = size("AUDIT_UNBATCHED", 2_000, 500);
    const verifyRepeats = size("AUDIT_VERIFY_REPEATS", 3, 1);
    const dir = await mkdtemp(join(tmpdir(), "airlock-bench-audit-"));
    const B = "audit-throughput";
    try {
      // Separate files, so the batched chain does not start with the unbatched records in it.
      const dbSingle = await openSqlite(join(dir, "single.db"));
      const singleRate: number[] = [];
      for (let i = 0; i < single; i++) {
        const t0 = performance.now();
        await dbSingle.transaction().execute((trx) => appendAudit(trx, event(i)));
        singleRate.push(1000 / (performance.now() - t0));
      }
      await dbSingle.destroy();

      const db = await openSqlite(join(dir, "batched.db"));
      const batchRate: number[] = [];
      const tAll = performance.now();
      for (let done = 0; done < total; done += batch) {
        const events = Array.from({ length: Math.min(batch, total - done) }, (_, k) => event(done + k));
        const t0 = performance.now();
        await db.transaction().execute((trx) => appendAudit(trx, events));
        batchRate.push((events.length * 1000) / (performance.now() - t0));
      }
      const overall = (total * 1000) / (performance.now() - tAll);
      log(`audit-throughput: appended ${total} records at ${Math.round(overall)}/s overall`);

      const verifyRate: number[] = [];
      const readRate: number[] = [];
      for (let r = 0; r < verifyRepeats; r++) {
        let t0 = performance.now();
        const count = await readAll(db);
        readRate.push((count * 1000) / (performance.now() - t0));
        t0 = performance.now();
        const v = await verifyAudit(db);
        verifyRate.push((v.records * 1000) / (performance.now() - t0));
        if (!v.ok || v.records !== total)
          throw new Error(`verifyAudit: ok=${v.ok} records=${v.records}/${total}`);
      }
      await db.destroy();

      // For rates, the slow tail is the LOW end: "p99" below is the 1st percentile of per-batch rate.
      const rate = (xs: number[]) => {
        const s = summarize(xs);
        const sorted = [...xs].sort((a, b) => a - b);
        return { ...s, p99: sorted[Math.floor(sorted.length * 0.01)] ?? Number.NaN };
      };
      const sSingle = rate(singleRate);
      const sBatch = rate(batchRate);
      const sRead = rate(readRate);
      return {
        rows: [
          row(B, "appendAudit, 1 record per transaction", "records/s", sSingle, {
            note: "p99 = slowest 1% of transactions, as a rate",
          }),
          row(B, `appendAudit, ${batch} records per transaction`, "records/s", sBatch, {
            baseline: { name: "1 record/txn", value: sSingle.p50 },
            targets: [{ stat: "p50", op: ">=", value: 20_000 }],
            note: "p99 = slowest 1% of transactions, as a rate",
          }),
          row(B, "read all audit rows (paged, no hashing)", "records/s", sRead),
          row(B, `verifyAudit over ${total.toLocaleString("en-US")} records`, "records/s", rate(verifyRate), {
            baseline: { name: "read without hashing", value: sRead.p50 },
          }),
        ],
        details: { total, batch, single, verifyRepeats, overallBatchedPerSec: overall },
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
