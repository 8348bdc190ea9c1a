/**
 * Leases: the record that a job was granted some secrets, until when, and whether the grant was
 * revoked. Names only — a lease never holds a value. Teardown revokes a job's leases; a revoked
 * or expired lease is not valid, and the broker issues no new one once the job has ended.
 */
import { appendAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import type { RandomSource } from "../identity/master-key.js";
import { newId } from "../ids.js";
import { type Executor, inTransaction, type SecretLeaseTable } from "./tables.js";

/** Default lease lifetime; the broker caps it at the job's own end. */
export const defaultLeaseTtlSeconds = 10 * 60;

export interface LeaseInfo {
  id: string;
  jobId: string;
  runId: string;
  /** What was granted: names with the scope (scopeKey) each came from. */
  names: { name: string; scope: string }[];
  issuedAt: string;
  expiresAt: string;
  revokedAt: string | null;
}

/** Internal (broker): inserts a lease inside the broker's transaction. */
export async function insertLease(
  trx: Executor,
  lease: Omit<LeaseInfo, "id" | "revokedAt">,
  random?: RandomSource,
): Promise<string> {
  const id = random ? newId("lse", random) : newId("lse");
  await trx
    .insertInto("secret_leases")
    .values({
      id,
      job_id: lease.jobId,
      run_id: lease.runId,
      names: JSON.stringify(lease.names),
      issued_at: lease.issuedAt,
      expires_at: lease.expiresAt,
      revoked_at: null,
    })
    .execute();
  return id;
}

export async function getLease(db: Executor, leaseId: string): Promise<LeaseInfo | undefined> {
  const row = await db.selectFrom("secret_leases").selectAll().where("id", "=", leaseId).executeTakeFirst();
  return row ? toInfo(row) : undefined;
}

export async function listJobLeases(db: Executor, jobId: string): Promise<LeaseInfo[]> {
  const rows = await db
    .selectFrom("secret_leases")
    .selectAll()
    .where("job_id", "=", jobId)
    .orderBy("issued_at")
    .orderBy("id")
    .execute();
  return rows.map(toInfo);
}

/**
 * Valid: it exists, is not revoked, has not expired, and (when `jobId` is given) belongs to that
 * job — a job cannot use another job's lease.
 */
export async function isLeaseValid(
  db: Executor,
  leaseId: string,
  opts: { jobId?: string; clock?: Clock } = {},
): Promise<boolean> {
  const lease = await getLease(db, leaseId);
  if (!lease || lease.revokedAt !== null) return false;
  if (opts.jobId !== undefined && lease.jobId !== opts.jobId) return false;
  return Date.parse(lease.expiresAt) > (opts.clock ?? systemClock).now().getTime();
}

export interface RevokeOptions {
  actor: string;
  reason?: string;
  clock?: Clock;
}

/** Revokes one lease. Idempotent: false when it was already revoked or does not exist. Audited. */
export async function revokeLease(db: Executor, leaseId: string, opts: RevokeOptions): Promise<boolean> {
  const clock = opts.clock ?? systemClock;
  return inTransaction(db, async (trx) => {
    const r = await trx
      .updateTable("secret_leases")
      .set({ revoked_at: clock.now().toISOString() })
      .where("id", "=", leaseId)
      .where("revoked_at", "is", null)
      .returning(["job_id", "run_id"])
      .executeTakeFirst();
    if (!r) return false;
    await appendAudit(
      trx,
      {
        type: "secret.lease_revoked",
        actor: opts.actor,
        runId: r.run_id,
        jobId: r.job_id,
        data: { leaseIds: [leaseId], reason: opts.reason ?? "revoked" },
      },
      clock,
    );
    return true;
  });
}

/**
 * Revokes every live lease of a job (teardown). Pass the teardown transaction to commit it with
 * the job's state change. Returns how many were revoked; audited once when there were any.
 */
export async function revokeJobLeases(db: Executor, jobId: string, opts: RevokeOptions): Promise<number> {
  const clock = opts.clock ?? systemClock;
  return inTransaction(db, async (trx) => {
    const rows = await trx
      .updateTable("secret_leases")
      .set({ revoked_at: clock.now().toISOString() })
      .where("job_id", "=", jobId)
      .where("revoked_at", "is", null)
      .returning(["id", "run_id"])
      .execute();
    if (rows.length === 0) return 0;
    await appendAudit(
      trx,
      {
        type: "secret.lease_revoked",
        actor: opts.actor,
        runId: rows[0]?.run_id ?? null,
        jobId,
        data: { leaseIds: rows.map((r) => r.id).sort(), reason: opts.reason ?? "job ended" },
      },
      clock,
    );
    return rows.length;
  });
}

function toInfo(row: SecretLeaseTable): LeaseInfo {
  return {
    id: row.id,
    jobId: row.job_id,
    runId: row.run_id,
    names: JSON.parse(row.names) as LeaseInfo["names"],
    issuedAt: row.issued_at,
    expiresAt: row.expires_at,
    revokedAt: row.revoked_at,
  };
}
