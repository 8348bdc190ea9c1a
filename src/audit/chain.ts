import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import type { AuditRecord } from "./events.js";

/**
 * A record's hash covers its own content and the previous record's hash, over RFC 8785 canonical
 * JSON, so editing, deleting or reordering any record breaks the chain from that point on.
 */
export function recordHash(r: Omit<AuditRecord, "hash">): string {
  const body = canonicalize({
    seq: r.seq,
    id: r.id,
    at: r.at,
    type: r.type,
    actor: r.actor,
    runId: r.runId,
    jobId: r.jobId,
    runnerId: r.runnerId,
    data: r.data,
    prevHash: r.prevHash,
  });
  return createHash("sha256")
    .update(body ?? "")
    .digest("hex");
}
