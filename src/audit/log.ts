import type { Kysely, Transaction } from "kysely";
import { type Clock, systemClock } from "../clock.js";
import { newId } from "../ids.js";
import type { Database } from "../store/tables.js";
import { recordHash } from "./chain.js";
import { type AuditEventInput, type AuditRecord, genesisHash } from "./events.js";

type Executor = Kysely<Database> | Transaction<Database>;

const headName = "main";
// SQLite allows 32,766 bound parameters per statement; 11 columns per row keeps a batch well below.
const insertBatch = 1000;

/**
 * Appends records to the hash chain. Call it with the transaction that makes the change being
 * recorded, so the state change and its audit record commit or roll back together. The head row
 * is read inside that transaction, which serialises concurrent appenders on both dialects.
 */
export async function appendAudit(
  db: Executor,
  events: AuditEventInput | AuditEventInput[],
  clock: Clock = systemClock,
): Promise<AuditRecord[]> {
  const list = Array.isArray(events) ? events : [events];
  if (list.length === 0) return [];
  const head = await db.selectFrom("audit_head").selectAll().where("name", "=", headName).executeTakeFirst();
  let seq = head ? Number(head.seq) : 0;
  let prevHash = head?.hash ?? genesisHash;
  const at = clock.now().toISOString();
  const records: AuditRecord[] = list.map((e) => {
    seq += 1;
    const base = {
      seq,
      id: newId("evt"),
      at,
      type: e.type,
      actor: e.actor,
      runId: e.runId ?? null,
      jobId: e.jobId ?? null,
      runnerId: e.runnerId ?? null,
      data: e.data ?? {},
      prevHash,
    };
    const record = { ...base, hash: recordHash(base) };
    prevHash = record.hash;
    return record;
  });
  for (let i = 0; i < records.length; i += insertBatch) {
    await db
      .insertInto("audit_events")
      .values(
        records.slice(i, i + insertBatch).map((r) => ({
          seq: r.seq,
          id: r.id,
          at: r.at,
          type: r.type,
          actor: r.actor,
          run_id: r.runId,
          job_id: r.jobId,
          runner_id: r.runnerId,
          data: JSON.stringify(r.data),
          prev_hash: r.prevHash,
          hash: r.hash,
        })),
      )
      .execute();
  }
  const last = records[records.length - 1] as AuditRecord;
  if (head) {
    await db
      .updateTable("audit_head")
      .set({ seq: last.seq, hash: last.hash })
      .where("name", "=", headName)
      .execute();
  } else {
    await db.insertInto("audit_head").values({ name: headName, seq: last.seq, hash: last.hash }).execute();
  }
  return records;
}

/** Appends in a transaction of its own, for events that accompany no other change (e.g. a refusal). */
export async function recordAudit(
  db: Kysely<Database>,
  events: AuditEventInput | AuditEventInput[],
  clock: Clock = systemClock,
): Promise<AuditRecord[]> {
  return db.transaction().execute((trx) => appendAudit(trx, events, clock));
}

export interface AuditQuery {
  runId?: string;
  jobId?: string;
  type?: string;
  afterSeq?: number;
  limit?: number;
}

export async function listAudit(db: Executor, q: AuditQuery = {}): Promise<AuditRecord[]> {
  let query = db.selectFrom("audit_events").selectAll().orderBy("seq", "asc");
  if (q.runId) query = query.where("run_id", "=", q.runId);
  if (q.jobId) query = query.where("job_id", "=", q.jobId);
  if (q.type) query = query.where("type", "=", q.type);
  if (q.afterSeq !== undefined) query = query.where("seq", ">", q.afterSeq);
  if (q.limit !== undefined) query = query.limit(q.limit);
  const rows = await query.execute();
  return rows.map(toRecord);
}

export function toRecord(r: Database["audit_events"]): AuditRecord {
  return {
    seq: Number(r.seq),
    id: r.id,
    at: r.at,
    type: r.type,
    actor: r.actor,
    runId: r.run_id,
    jobId: r.job_id,
    runnerId: r.runner_id,
    data: parseData(r.data),
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

// A row edited into something that is not JSON is still listed (verify names it); listing must not
// fail on the very record an operator is trying to look at.
function parseData(text: string): Record<string, unknown> {
  try {
    const data: unknown = JSON.parse(text);
    if (data !== null && typeof data === "object" && !Array.isArray(data))
      return data as Record<string, unknown>;
  } catch {
    // fall through
  }
  return { invalid: "the stored data is not a JSON object: run `airlock audit verify`" };
}
