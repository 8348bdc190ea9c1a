import type { Kysely } from "kysely";
import type { Database } from "../store/tables.js";
import { recordHash } from "./chain.js";
import { genesisHash } from "./events.js";
import { toRecord } from "./log.js";

export interface AuditProblem {
  seq: number;
  id: string | null;
  kind: "edited" | "missing" | "reordered" | "truncated";
  message: string;
}

export interface AuditVerification {
  ok: boolean;
  records: number;
  headHash: string;
  problems: AuditProblem[];
}

const pageSize = 5000;

/**
 * Walks the chain in sequence order and names every record that does not fit: a record whose
 * content no longer matches its hash was edited; a gap in sequence numbers is a deletion; a record
 * whose prev_hash points at a different predecessor was moved; a head that is ahead of the last
 * record means the tail was cut off.
 */
export async function verifyAudit(db: Kysely<Database>): Promise<AuditVerification> {
  const problems: AuditProblem[] = [];
  let expectedSeq = 1;
  let prevHash = genesisHash;
  let count = 0;
  let afterSeq = 0;
  const hashesBySeq = new Map<string, number>();
  for (;;) {
    const rows = await db
      .selectFrom("audit_events")
      .selectAll()
      .where("seq", ">", afterSeq)
      .orderBy("seq", "asc")
      .limit(pageSize)
      .execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      const r = toRecord(row);
      count += 1;
      afterSeq = r.seq;
      if (r.seq !== expectedSeq) {
        problems.push({
          seq: expectedSeq,
          id: null,
          kind: "missing",
          message: `record${r.seq - expectedSeq > 1 ? `s ${expectedSeq}..${r.seq - 1}` : ` ${expectedSeq}`} missing before ${r.id} (seq ${r.seq})`,
        });
      }
      const { hash, ...content } = r;
      if (recordHash(content) !== hash) {
        problems.push({
          seq: r.seq,
          id: r.id,
          kind: "edited",
          message: `record ${r.seq} (${r.id}, ${r.type}) was edited: its content does not match its hash`,
        });
      } else if (r.prevHash !== prevHash && r.seq === expectedSeq) {
        const from = hashesBySeq.get(r.prevHash);
        problems.push({
          seq: r.seq,
          id: r.id,
          kind: "reordered",
          message:
            from !== undefined
              ? `record ${r.seq} (${r.id}) was moved: it follows record ${from}, not ${r.seq - 1}`
              : `record ${r.seq} (${r.id}) does not follow record ${r.seq - 1}: the chain is broken here`,
        });
      }
      hashesBySeq.set(hash, r.seq);
      prevHash = hash;
      expectedSeq = r.seq + 1;
    }
  }
  const head = await db.selectFrom("audit_head").selectAll().where("name", "=", "main").executeTakeFirst();
  if (head && Number(head.seq) !== expectedSeq - 1) {
    problems.push({
      seq: Number(head.seq),
      id: null,
      kind: "truncated",
      message: `the log ends at record ${expectedSeq - 1} but its head says ${head.seq}: records at the end were deleted`,
    });
  } else if (head && head.hash !== prevHash) {
    problems.push({
      seq: Number(head.seq),
      id: null,
      kind: "edited",
      message: `the last record does not match the recorded head hash`,
    });
  }
  return { ok: problems.length === 0, records: count, headHash: prevHash, problems };
}
