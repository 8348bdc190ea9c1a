import type { Kysely } from "kysely";
import { AirlockError } from "../errors.js";
import type { Database } from "../store/tables.js";
import { recordHash } from "./chain.js";
import { type AuditRecord, genesisHash } from "./events.js";

export interface AuditProblem {
  seq: number;
  id: string | null;
  /**
   * edited: a record's content no longer matches its hash, or it was re-hashed after an edit;
   * missing: a gap in the sequence; reordered: a record links to another predecessor;
   * truncated: records at the end are gone; inserted: a record Airlock did not write;
   * rewritten: the log disagrees with an anchor the operator exported earlier.
   */
  kind: "edited" | "missing" | "reordered" | "truncated" | "inserted" | "rewritten";
  message: string;
}

/** A point of the chain written down outside the database (`airlock audit head`). */
export interface AuditAnchor {
  seq: number;
  hash: string;
}

export interface AuditVerification {
  ok: boolean;
  records: number;
  /** The last record's sequence number and hash: what `audit head` exports as an anchor. */
  headSeq: number;
  headHash: string;
  /** How many anchors were checked. */
  anchors: number;
  problems: AuditProblem[];
}

export interface VerifyOptions {
  /**
   * Heads exported earlier. Each hash covers every record up to its seq, so a log that still has
   * that record with that hash has not been cut back or rewritten up to there, even by someone
   * who recomputed every hash in the database.
   */
  anchors?: readonly AuditAnchor[];
}

const pageSize = 5000;
const anchorPattern = /^([1-9][0-9]{0,15}):([0-9a-f]{64})$/;

/** Parses `SEQ:HASH` (what `airlock audit head` prints). */
export function parseAnchor(text: string): AuditAnchor {
  const m = anchorPattern.exec(text.trim());
  const seq = Number(m?.[1]);
  if (!m || !Number.isSafeInteger(seq)) {
    throw new AirlockError(
      "REQUEST_INVALID",
      "an audit anchor is SEQ:HASH (a record number and 64 hex digits)",
      {
        hint: "use what `airlock audit head` printed, e.g. 1234:9f86d0…",
      },
    );
  }
  return { seq, hash: m[2] as string };
}

export function formatAnchor(a: AuditAnchor): string {
  return `${a.seq}:${a.hash}`;
}

/** The current end of the chain, to be written down somewhere the database's writers cannot reach. */
export async function auditHead(db: Kysely<Database>): Promise<AuditAnchor & { at: string | null }> {
  const last = await db
    .selectFrom("audit_events")
    .select(["seq", "hash", "at"])
    .orderBy("seq", "desc")
    .limit(1)
    .executeTakeFirst();
  if (!last) return { seq: 0, hash: genesisHash, at: null };
  return { seq: Number(last.seq), hash: last.hash, at: last.at };
}

interface Checked {
  seq: number;
  id: string;
  /** The hash column as stored. */
  stored: string;
  /** The hash the record's content gives; differs from `stored` when the record was edited. */
  computed: string | null;
}

/**
 * Walks the chain in sequence order and names every record that does not fit: a record whose
 * content no longer matches its hash was edited; one that matches its own hash but that its
 * successor no longer links to was edited and re-hashed; a gap in sequence numbers is a deletion;
 * a record linking to an earlier record than its predecessor was moved (or what lies between was
 * inserted); a record numbered outside 1, 2, 3, … was inserted; a head behind or ahead of the last
 * record means the tail was cut off or added to. Malformed rows are reported, never thrown on.
 *
 * Someone who can write the database can still recompute every hash after an edit and move the
 * head; `anchors` (heads exported earlier) catch that up to the newest anchor.
 */
export async function verifyAudit(
  db: Kysely<Database>,
  opts: VerifyOptions = {},
): Promise<AuditVerification> {
  const problems: AuditProblem[] = [];
  const anchors = opts.anchors ?? [];
  const anchorSeqs = new Set(anchors.map((a) => a.seq));
  const anchoredHashes = new Map<number, string>();
  let expectedSeq = 1;
  let prev: Checked | null = null;
  let count = 0;
  let afterSeq: unknown = null;
  const seqByHash = new Map<string, number>();
  for (;;) {
    let query = db.selectFrom("audit_events").selectAll().orderBy("seq", "asc").limit(pageSize);
    // Paging by the raw column value keeps going past rows whose seq is not a whole number.
    if (afterSeq !== null) query = query.where("seq", ">", afterSeq as number);
    const rows = await query.execute();
    if (rows.length === 0) break;
    for (const row of rows) {
      afterSeq = row.seq;
      count += 1;
      const seq = Number(row.seq);
      if (!Number.isSafeInteger(seq) || seq < 1) {
        problems.push({
          seq: Number.isFinite(seq) ? seq : -1,
          id: row.id,
          kind: "inserted",
          message: `a record numbered ${JSON.stringify(row.seq)} (${row.id}) was added outside Airlock, which numbers records 1, 2, 3, …`,
        });
        continue;
      }
      if (seq !== expectedSeq) {
        problems.push({
          seq: expectedSeq,
          id: null,
          kind: "missing",
          message: `record${seq - expectedSeq > 1 ? `s ${expectedSeq}..${seq - 1}` : ` ${expectedSeq}`} missing before ${row.id} (seq ${seq})`,
        });
      }
      const record = parseRow(row);
      const computed = record ? recordHash(contentOf(record)) : null;
      const current: Checked = { seq, id: row.id, stored: row.hash, computed };
      if (computed !== row.hash) {
        problems.push({
          seq,
          id: row.id,
          kind: "edited",
          message: record
            ? `record ${seq} (${row.id}, ${row.type}) was edited: its content does not match its hash`
            : `record ${seq} (${row.id}) was edited: its data is not the JSON object Airlock wrote`,
        });
      } else if (seq === expectedSeq) {
        const link = linkProblem(row.prev_hash, prev, current, seqByHash);
        if (link) problems.push(link);
      }
      if (anchorSeqs.has(seq)) anchoredHashes.set(seq, row.hash);
      seqByHash.set(row.hash, seq);
      prev = current;
      expectedSeq = seq + 1;
    }
  }
  const last = expectedSeq - 1;
  problems.push(...(await headProblems(db, last, prev)));
  for (const a of anchors) {
    const found = anchoredHashes.get(a.seq);
    if (found === a.hash) continue;
    problems.push(
      found !== undefined
        ? {
            seq: a.seq,
            id: null,
            kind: "rewritten",
            message: `record ${a.seq} does not match the anchor exported earlier: the log up to record ${a.seq} was rewritten (its hashes recomputed)`,
          }
        : a.seq > last
          ? {
              seq: a.seq,
              id: null,
              kind: "truncated",
              message: `an anchor exported earlier says record ${a.seq} existed, but the log ends at record ${last}: records at the end were deleted`,
            }
          : {
              seq: a.seq,
              id: null,
              kind: "missing",
              message: `an anchor exported earlier names record ${a.seq}, which is missing`,
            },
    );
  }
  return {
    ok: problems.length === 0,
    records: count,
    headSeq: prev?.seq ?? 0,
    headHash: prev?.stored ?? genesisHash,
    anchors: anchors.length,
    problems,
  };
}

/** The problem, if any, with how a self-consistent record links to the one before it. */
function linkProblem(
  prevHash: string,
  prev: Checked | null,
  current: Checked,
  seqByHash: ReadonlyMap<string, number>,
): AuditProblem | null {
  const { seq, id } = current;
  if (prev === null) {
    if (prevHash === genesisHash) return null;
    const from = seqByHash.get(prevHash);
    return {
      seq,
      id,
      kind: "reordered",
      message:
        from !== undefined
          ? `record ${seq} (${id}) was moved: it follows record ${from}, not ${seq - 1}`
          : `record ${seq} (${id}) does not start the chain: records before it were deleted or rewritten`,
    };
  }
  // An edited predecessor was reported already; its successor may link to either of its hashes.
  if (prevHash === prev.stored || prevHash === prev.computed) return null;
  const from = seqByHash.get(prevHash);
  if (from !== undefined) {
    return {
      seq,
      id,
      kind: "reordered",
      message:
        from === seq - 2
          ? `record ${seq} (${id}) was moved: it follows record ${from}, not ${seq - 1} (record ${seq - 1} was inserted, or the two were swapped)`
          : `record ${seq} (${id}) was moved: it follows record ${from}, not ${seq - 1}`,
    };
  }
  // The predecessor matches its own hash, yet this record links elsewhere: the predecessor was
  // edited and its hash recomputed (or replaced by a forged record).
  return {
    seq: prev.seq,
    id: prev.id,
    kind: "edited",
    message: `record ${prev.seq} (${prev.id}) was edited and re-hashed: record ${seq} (${id}) no longer links to it`,
  };
}

async function headProblems(
  db: Kysely<Database>,
  last: number,
  prev: Checked | null,
): Promise<AuditProblem[]> {
  const head = await db.selectFrom("audit_head").selectAll().where("name", "=", "main").executeTakeFirst();
  if (!head) {
    if (last === 0 && prev === null) return [];
    return [
      {
        seq: last,
        id: null,
        kind: "truncated",
        message: `the log's head row is missing: records at the end may have been deleted with it`,
      },
    ];
  }
  const headSeq = Number(head.seq);
  if (headSeq > last) {
    return [
      {
        seq: headSeq,
        id: null,
        kind: "truncated",
        message: `the log ends at record ${last} but its head says ${headSeq}: records at the end were deleted`,
      },
    ];
  }
  if (headSeq < last) {
    return [
      {
        seq: headSeq + 1,
        id: null,
        kind: "inserted",
        message: `record${last > headSeq + 1 ? `s ${headSeq + 1}..${last} come` : ` ${last} comes`} after the log's head (${headSeq}): added outside Airlock`,
      },
    ];
  }
  if (prev && head.hash !== prev.stored) {
    return [
      {
        seq: headSeq,
        id: prev.id,
        kind: "edited",
        message: `record ${headSeq} (${prev.id}) does not match the recorded head hash: it was edited or replaced`,
      },
    ];
  }
  return [];
}

function parseRow(row: Database["audit_events"]): AuditRecord | null {
  let data: unknown;
  try {
    data = JSON.parse(row.data);
  } catch {
    return null;
  }
  if (data === null || typeof data !== "object" || Array.isArray(data)) return null;
  return {
    seq: Number(row.seq),
    id: row.id,
    at: row.at,
    type: row.type,
    actor: row.actor,
    runId: row.run_id,
    jobId: row.job_id,
    runnerId: row.runner_id,
    data: data as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}

function contentOf(r: AuditRecord): Omit<AuditRecord, "hash"> {
  const { hash: _hash, ...content } = r;
  return content;
}
