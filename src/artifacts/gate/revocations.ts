/**
 * The revocation list: artifacts (by digest), signing keys (by key id) and runners (by id) that
 * verification and promotion refuse from the moment they are listed. Revocation is permanent
 * and idempotent: listing a subject twice keeps the first record.
 */
import { appendAudit } from "../../audit/log.js";
import { type Clock, systemClock } from "../../clock.js";
import { AirlockError } from "../../errors.js";
import { parseDigest } from "../store.js";
import { auditExecutor, type GateDb, type GateExecutor } from "./tables.js";

export const REVOCATION_KINDS = ["artifact", "key", "runner"] as const;
export type RevocationKind = (typeof REVOCATION_KINDS)[number];

export interface Revocation {
  kind: RevocationKind;
  subject: string;
  reason: string;
  revokedBy: string;
  revokedAt: string;
}

export interface RevocationList {
  readonly artifacts: ReadonlySet<string>;
  readonly keys: ReadonlySet<string>;
  readonly runners: ReadonlySet<string>;
  has(kind: RevocationKind, subject: string): boolean;
}

function checkSubject(kind: string, subject: string): RevocationKind {
  if (!(REVOCATION_KINDS as readonly string[]).includes(kind)) {
    throw new AirlockError("REQUEST_INVALID", `unknown revocation kind "${kind}"`, {
      hint: `use one of ${REVOCATION_KINDS.join(", ")}`,
    });
  }
  if (kind === "artifact") parseDigest(subject);
  else if (kind === "runner" && !/^rnr_[a-z0-9]+$/.test(subject)) {
    throw new AirlockError("REQUEST_INVALID", `"${subject}" is not a runner id`, {
      hint: "runner ids look like rnr_…",
    });
  } else if (kind === "key" && !/^[\x21-\x7e]{1,256}$/.test(subject)) {
    throw new AirlockError("REQUEST_INVALID", "a key id is 1 to 256 printable characters without spaces");
  }
  return kind as RevocationKind;
}

/** Adds a subject to the revocation list and audits `revocation.added` in the same transaction. */
export async function revoke(
  db: GateDb,
  input: { kind: RevocationKind; subject: string; reason: string },
  actor: string,
  clock: Clock = systemClock,
): Promise<{ revocation: Revocation; created: boolean }> {
  const kind = checkSubject(input.kind, input.subject);
  const reason = input.reason.trim();
  if (reason.length === 0 || reason.length > 1000) {
    throw new AirlockError("REQUEST_INVALID", "a revocation needs a reason of 1 to 1000 characters");
  }
  return db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom("artifact_revocations")
      .selectAll()
      .where("kind", "=", kind)
      .where("subject", "=", input.subject)
      .executeTakeFirst();
    if (existing) return { revocation: toRevocation(existing), created: false };
    const row = {
      kind,
      subject: input.subject,
      reason,
      revoked_by: actor,
      revoked_at: clock.now().toISOString(),
    };
    await trx.insertInto("artifact_revocations").values(row).execute();
    await appendAudit(
      auditExecutor(trx),
      { type: "revocation.added", actor, data: { kind, subject: input.subject, reason } },
      clock,
    );
    return { revocation: toRevocation(row), created: true };
  });
}

export async function listRevocations(db: GateExecutor): Promise<Revocation[]> {
  const rows = await db
    .selectFrom("artifact_revocations")
    .selectAll()
    .orderBy("revoked_at", "asc")
    .orderBy("kind", "asc")
    .orderBy("subject", "asc")
    .execute();
  return rows.map(toRevocation);
}

/** The whole list as sets, for verification to consult without a query per check. */
export async function revocationList(db: GateExecutor): Promise<RevocationList> {
  const sets = { artifact: new Set<string>(), key: new Set<string>(), runner: new Set<string>() };
  for (const r of await listRevocations(db)) sets[r.kind].add(r.subject);
  return {
    artifacts: sets.artifact,
    keys: sets.key,
    runners: sets.runner,
    has: (kind, subject) => sets[kind].has(subject),
  };
}

function toRevocation(r: {
  kind: string;
  subject: string;
  reason: string;
  revoked_by: string;
  revoked_at: string;
}): Revocation {
  return {
    kind: r.kind as RevocationKind,
    subject: r.subject,
    reason: r.reason,
    revokedBy: r.revoked_by,
    revokedAt: r.revoked_at,
  };
}
