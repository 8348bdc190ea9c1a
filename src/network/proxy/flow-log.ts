import type { Kysely } from "kysely";
import { Counter, Histogram, type Registry } from "prom-client";
import { recordAudit } from "../../audit/log.js";
import { newId } from "../../ids.js";
import type { Database, EgressFlowTable } from "../../store/tables.js";
import type { EgressMode, FlowDecision } from "./allowlist.js";

export type FlowProtocol = "http" | "connect" | "tls" | "tcp";

/** One connection attempt (one request for plain HTTP), allowed or not. */
export interface Flow {
  id: string;
  jobId: string;
  runnerId: string;
  runId: string;
  mode: EgressMode;
  /** As the job named it (normalised), or the IP literal it used. */
  host: string;
  /** The checked address connected to, or the refused one; null when nothing was resolved. */
  address: string | null;
  port: number;
  protocol: FlowProtocol;
  bytesUp: number;
  bytesDown: number;
  /** ISO-8601. */
  startedAt: string;
  durationMs: number;
  /** From accepting the client to the upstream connection being open; null when none was made. */
  connectMs: number | null;
  decision: FlowDecision;
  rule: string;
  error?: string;
}

export interface FlowSink {
  /** Called once per flow when it ends. Must not throw or block: the proxy calls it inline. */
  record(flow: Flow): void;
}

export function newFlowId(): string {
  return newId("flw");
}

export function teeSinks(...sinks: FlowSink[]): FlowSink {
  return {
    record(flow) {
      for (const s of sinks) s.record(flow);
    },
  };
}

function toRow(f: Flow): EgressFlowTable {
  return {
    id: f.id,
    job_id: f.jobId,
    run_id: f.runId,
    runner_id: f.runnerId,
    mode: f.mode,
    host: f.host,
    address: f.address,
    port: f.port,
    protocol: f.protocol,
    bytes_up: f.bytesUp,
    bytes_down: f.bytesDown,
    started_at: f.startedAt,
    duration_ms: Math.round(f.durationMs),
    connect_ms: f.connectMs === null ? null : Math.round(f.connectMs),
    decision: f.decision,
    rule: f.rule,
    error: f.error ?? null,
  };
}

function fromRow(r: EgressFlowTable): Flow {
  const flow: Flow = {
    id: r.id,
    jobId: r.job_id,
    runId: r.run_id,
    runnerId: r.runner_id,
    mode: r.mode as EgressMode,
    host: r.host,
    address: r.address,
    port: Number(r.port),
    protocol: r.protocol as FlowProtocol,
    bytesUp: Number(r.bytes_up),
    bytesDown: Number(r.bytes_down),
    startedAt: r.started_at,
    durationMs: Number(r.duration_ms),
    connectMs: r.connect_ms === null ? null : Number(r.connect_ms),
    decision: r.decision as FlowDecision,
    rule: r.rule,
  };
  if (r.error !== null) flow.error = r.error;
  return flow;
}

export interface StoreFlowSinkOptions {
  /** How long a flow may wait before it is written. */
  flushMs?: number;
  /** Write as soon as this many are waiting. */
  maxBatch?: number;
  /** Write failures go here (the proxy keeps running; a lost flow must still be visible somewhere). */
  onError?: (error: unknown, lost: number) => void;
}

// 17 columns per row; SQLite binds at most 32,766 parameters per statement.
const rowsPerInsert = 1000;

/**
 * Writes flows in batches (one insert per flush, not per connection) and, for every denial, an
 * `egress.denied` audit record in the same flush. Call `close()` at shutdown to write the rest.
 */
export class StoreFlowSink implements FlowSink {
  private pending: Flow[] = [];
  private timer: NodeJS.Timeout | undefined;
  private writing: Promise<void> = Promise.resolve();
  private readonly flushMs: number;
  private readonly maxBatch: number;
  private readonly onError: (error: unknown, lost: number) => void;

  constructor(
    private readonly db: Kysely<Database>,
    options: StoreFlowSinkOptions = {},
  ) {
    this.flushMs = options.flushMs ?? 250;
    this.maxBatch = options.maxBatch ?? 500;
    this.onError = options.onError ?? (() => {});
  }

  record(flow: Flow): void {
    this.pending.push(flow);
    if (this.pending.length >= this.maxBatch) void this.flush();
    else if (!this.timer) {
      this.timer = setTimeout(() => void this.flush(), this.flushMs);
      this.timer.unref();
    }
  }

  /** Resolves when everything recorded before the call is written (or reported to onError). */
  flush(): Promise<void> {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    this.pending = [];
    // Writes are chained so flows land in the order they were recorded.
    this.writing = this.writing.then(() => (batch.length ? this.write(batch) : undefined));
    return this.writing;
  }

  close(): Promise<void> {
    return this.flush();
  }

  private async write(batch: Flow[]): Promise<void> {
    try {
      const db = this.db;
      const rows = batch.map(toRow);
      for (let i = 0; i < rows.length; i += rowsPerInsert) {
        await db
          .insertInto("egress_flows")
          .values(rows.slice(i, i + rowsPerInsert))
          .execute();
      }
      const denials = batch.filter((f) => f.decision === "denied");
      if (denials.length) {
        await recordAudit(
          this.db,
          denials.map((f) => ({
            type: "egress.denied",
            actor: f.runnerId,
            runId: f.runId,
            jobId: f.jobId,
            runnerId: f.runnerId,
            data: {
              host: f.host,
              port: f.port,
              address: f.address,
              rule: f.rule,
              protocol: f.protocol,
              flowId: f.id,
            },
          })),
        );
      }
    } catch (error) {
      this.onError(error, batch.length);
    }
  }
}

export interface FlowMetrics extends FlowSink {
  readonly connections: Counter<"decision" | "protocol">;
  readonly bytes: Counter<"direction">;
  readonly connectSeconds: Histogram<"protocol">;
}

/** Prometheus view of the flow log, registered on the registry given (never the global one). */
export function createFlowMetrics(registry: Registry): FlowMetrics {
  const connections = new Counter({
    name: "airlock_egress_connections_total",
    help: "Egress connection attempts by decision (allowed, denied, audited) and protocol.",
    labelNames: ["decision", "protocol"] as const,
    registers: [registry],
  });
  const bytes = new Counter({
    name: "airlock_egress_bytes_total",
    help: "Bytes carried by the egress proxy, up (job to destination) and down.",
    labelNames: ["direction"] as const,
    registers: [registry],
  });
  const connectSeconds = new Histogram({
    name: "airlock_egress_connect_seconds",
    help: "Time from accepting a job's connection to the upstream connection being open (decision, DNS, connect).",
    labelNames: ["protocol"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers: [registry],
  });
  return {
    connections,
    bytes,
    connectSeconds,
    record(flow) {
      connections.inc({ decision: flow.decision, protocol: flow.protocol });
      if (flow.bytesUp) bytes.inc({ direction: "up" }, flow.bytesUp);
      if (flow.bytesDown) bytes.inc({ direction: "down" }, flow.bytesDown);
      if (flow.connectMs !== null) connectSeconds.observe({ protocol: flow.protocol }, flow.connectMs / 1000);
    },
  };
}

export interface FlowQuery {
  jobId?: string;
  runId?: string;
  decision?: FlowDecision;
  limit?: number;
}

/** For `airlock egress flows JOB`: oldest first. */
export async function listFlows(db: Kysely<Database>, q: FlowQuery = {}): Promise<Flow[]> {
  let query = db.selectFrom("egress_flows").selectAll().orderBy("started_at", "asc").orderBy("id", "asc");
  if (q.jobId) query = query.where("job_id", "=", q.jobId);
  if (q.runId) query = query.where("run_id", "=", q.runId);
  if (q.decision) query = query.where("decision", "=", q.decision);
  if (q.limit !== undefined) query = query.limit(q.limit);
  return (await query.execute()).map(fromRow);
}

export interface HostCount {
  host: string;
  port: number;
  count: number;
}

/**
 * The destinations audit-mode jobs of one repo (by name) reached, with how often: the input to
 * `suggestAllowlist`. Flows the address guard refused are left out — no rule could allow them.
 */
export async function auditedDestinations(db: Kysely<Database>, repoName: string): Promise<HostCount[]> {
  const rows = await db
    .selectFrom("egress_flows as f")
    .innerJoin("jobs as j", "j.id", "f.job_id")
    .innerJoin("runs as r", "r.id", "j.run_id")
    .innerJoin("repos as p", "p.id", "r.repo_id")
    .where("p.name", "=", repoName)
    .where("f.mode", "=", "audit")
    .where("f.decision", "=", "audited")
    .select(["f.host", "f.port", (eb) => eb.fn.countAll<number>().as("count")])
    .groupBy(["f.host", "f.port"])
    .execute();
  return rows.map((r) => ({ host: r.host, port: Number(r.port), count: Number(r.count) }));
}
