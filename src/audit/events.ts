/** What an audit record says. Every record names the run, job and runner it concerns, where any. */
export interface AuditEventInput {
  type: string;
  actor: string;
  runId?: string | null;
  jobId?: string | null;
  runnerId?: string | null;
  data?: Record<string, unknown>;
}

export interface AuditRecord {
  seq: number;
  id: string;
  at: string;
  type: string;
  actor: string;
  runId: string | null;
  jobId: string | null;
  runnerId: string | null;
  data: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

/** The hash of the (absent) record before the first one. */
export const genesisHash = "0".repeat(64);
