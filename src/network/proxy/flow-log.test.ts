import { Registry } from "prom-client";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listAudit } from "../../audit/log.js";
import { verifyAudit } from "../../audit/verify.js";
import { type Db, openSqlite } from "../../store/database.js";
import { createAddressGuard } from "./address-guard.js";
import { compilePolicy } from "./allowlist.js";
import {
  auditedDestinations,
  createFlowMetrics,
  type Flow,
  listFlows,
  newFlowId,
  StoreFlowSink,
  teeSinks,
} from "./flow-log.js";
import { EgressProxy } from "./proxy-server.js";
import { suggestAllowlist } from "./suggest.js";
import {
  closeServer,
  connectVia,
  echoHttpServer,
  fakeResolver,
  httpVia,
  listen,
  rulesWithoutLoopback,
} from "./test-support.js";

let db: Db;

beforeEach(async () => {
  db = await openSqlite(":memory:");
});
afterEach(async () => db.destroy());

function flow(over: Partial<Flow> = {}): Flow {
  return {
    id: newFlowId(),
    jobId: "job_a",
    runId: "run_a",
    runnerId: "rnr_a",
    mode: "enforce",
    host: "registry.npmjs.org",
    address: "104.16.0.1",
    port: 443,
    protocol: "connect",
    bytesUp: 1200,
    bytesDown: 3_000_000_000, // past 2^31: bigint columns
    startedAt: "2025-01-01T00:00:00.000Z",
    durationMs: 12.6,
    connectMs: 0.4,
    decision: "allowed",
    rule: "registry.npmjs.org",
    ...over,
  };
}

async function seedJob(jobId: string, runId: string, repo: string): Promise<void> {
  const at = "2025-01-01T00:00:00.000Z";
  const repoId = `repo_${repo}`;
  if (!(await db.selectFrom("repos").select("id").where("id", "=", repoId).executeTakeFirst())) {
    await db
      .insertInto("repos")
      .values({
        id: repoId,
        name: repo,
        source: "/src",
        protected_branches: "[]",
        protected_tags: "[]",
        created_at: at,
      })
      .execute();
  }
  await db
    .insertInto("runs")
    .values({
      id: runId,
      repo_id: repoId,
      run_number: Number(runId.replace(/\D/g, "")) || 1,
      ref: "refs/heads/main",
      ref_type: "branch",
      sha: "0".repeat(40),
      event: "push",
      actor: "usr_x",
      workflow_path: ".github/workflows/ci.yml",
      workflow_name: "ci",
      inputs: "{}",
      state: "completed",
      created_at: at,
      updated_at: at,
    })
    .execute();
  await db
    .insertInto("jobs")
    .values({
      id: jobId,
      run_id: runId,
      key: "build",
      name: "build",
      state: "completed",
      needs: "[]",
      spec: "{}",
      conclusion: null,
      runner_id: null,
      decision: null,
      detail: null,
      cancel_requested_at: null,
      outputs: null,
      created_at: at,
      updated_at: at,
      started_at: null,
      finished_at: null,
    })
    .execute();
}

describe("StoreFlowSink", () => {
  it("writes flows in batches and reads them back intact", async () => {
    const sink = new StoreFlowSink(db, { flushMs: 10_000 });
    const a = flow();
    const b = flow({
      id: newFlowId(),
      decision: "audited",
      mode: "audit",
      error: "ECONNRESET",
      connectMs: null,
    });
    sink.record(a);
    sink.record(b);
    expect(await listFlows(db)).toEqual([]); // nothing yet: batched
    await sink.flush();
    const rows = await listFlows(db, { jobId: "job_a" });
    expect(rows).toHaveLength(2);
    expect(rows.find((r) => r.id === a.id)).toEqual({ ...a, durationMs: 13, connectMs: 0 });
    expect(rows.find((r) => r.id === b.id)).toMatchObject({
      error: "ECONNRESET",
      connectMs: null,
      decision: "audited",
    });
    expect(await listFlows(db, { jobId: "job_other" })).toEqual([]);
  });

  it("flushes on its own after flushMs, and when a batch fills", async () => {
    const timed = new StoreFlowSink(db, { flushMs: 20 });
    timed.record(flow());
    await new Promise((r) => setTimeout(r, 100));
    expect(await listFlows(db)).toHaveLength(1);
    const full = new StoreFlowSink(db, { flushMs: 10_000, maxBatch: 3 });
    for (let i = 0; i < 3; i++) full.record(flow({ id: newFlowId() }));
    await new Promise((r) => setTimeout(r, 50));
    expect(await listFlows(db)).toHaveLength(4);
  });

  it("writes an egress.denied audit record per denial, on the hash chain", async () => {
    const sink = new StoreFlowSink(db);
    const denied = flow({
      decision: "denied",
      rule: "default-deny",
      host: "evil.test",
      address: null,
      bytesDown: 0,
    });
    sink.record(flow());
    sink.record(denied);
    await sink.close();
    const events = await listAudit(db, { type: "egress.denied" });
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({
      type: "egress.denied",
      actor: "rnr_a",
      runId: "run_a",
      jobId: "job_a",
      runnerId: "rnr_a",
      data: {
        host: "evil.test",
        port: 443,
        address: null,
        rule: "default-deny",
        protocol: "connect",
        flowId: denied.id,
      },
    });
    expect((await verifyAudit(db)).ok).toBe(true);
  });

  it("reports a failed write instead of throwing", async () => {
    const errors: number[] = [];
    const sink = new StoreFlowSink(db, { onError: (_e, lost) => errors.push(lost) });
    const dup = flow();
    sink.record(dup);
    sink.record(dup); // same primary key twice
    await sink.flush();
    expect(errors).toEqual([2]);
  });
});

describe("flow metrics", () => {
  it("counts connections by decision, bytes by direction, and connect latency", async () => {
    const registry = new Registry();
    const m = createFlowMetrics(registry);
    const sink = teeSinks(m);
    sink.record(flow({ bytesUp: 10, bytesDown: 20 }));
    sink.record(flow({ decision: "denied", bytesUp: 0, bytesDown: 0, connectMs: null }));
    const text = await registry.metrics();
    expect(text).toContain('airlock_egress_connections_total{decision="allowed",protocol="connect"} 1');
    expect(text).toContain('airlock_egress_connections_total{decision="denied",protocol="connect"} 1');
    expect(text).toContain('airlock_egress_bytes_total{direction="up"} 10');
    expect(text).toContain('airlock_egress_bytes_total{direction="down"} 20');
    expect(text).toContain('airlock_egress_connect_seconds_count{protocol="connect"} 1');
  });
});

describe("proxy → store → suggest", () => {
  it("persists the proxy's flows and turns audit-mode runs into an allowlist", async () => {
    await seedJob("job_1", "run_1", "acme/app");
    await seedJob("job_2", "run_2", "acme/app");
    await seedJob("job_3", "run_3", "other/repo");
    const upstream = echoHttpServer();
    const port = await listen(upstream);
    const names = Object.fromEntries(
      ["registry.test", "a.cdn.test", "b.cdn.test", "c.cdn.test", "elsewhere.test"].map((n) => [
        n,
        ["127.0.0.1"],
      ]),
    );
    names["metadata.test"] = ["169.254.169.254"];
    const sink = new StoreFlowSink(db, { flushMs: 10_000 });
    const registry = new Registry();
    let current = "job_1";
    const jobs = {
      job_1: { jobId: "job_1", runId: "run_1", runnerId: "rnr_1", policy: compilePolicy({ mode: "audit" }) },
      job_2: { jobId: "job_2", runId: "run_2", runnerId: "rnr_2", policy: compilePolicy({ mode: "audit" }) },
      job_3: { jobId: "job_3", runId: "run_3", runnerId: "rnr_3", policy: compilePolicy({ mode: "audit" }) },
    } as const;
    const proxy = new EgressProxy({
      jobForClient: () => jobs[current as keyof typeof jobs],
      sink: teeSinks(sink, createFlowMetrics(registry)),
      resolver: fakeResolver(names),
      guard: createAddressGuard({ rules: rulesWithoutLoopback }),
    });
    try {
      const fwd = (await proxy.listen({ role: "forward", host: "127.0.0.1", port: 0 })).port;
      for (const host of ["registry.test", "registry.test", "a.cdn.test", "b.cdn.test"]) {
        expect((await httpVia(fwd, `http://${host}:${port}/`)).status).toBe(200);
      }
      current = "job_2";
      expect((await httpVia(fwd, `http://c.cdn.test:${port}/`)).status).toBe(200);
      // Refused by the address guard even in audit mode, and so never suggested.
      expect((await connectVia(fwd, "metadata.test:443")).status).toBe(403);
      current = "job_3";
      expect((await httpVia(fwd, `http://elsewhere.test:${port}/`)).status).toBe(200);
      await new Promise((r) => setTimeout(r, 50));
      await sink.flush();

      const job1 = await listFlows(db, { jobId: "job_1" });
      expect(job1.map((f) => [f.host, f.decision, f.protocol])).toEqual([
        ["registry.test", "audited", "http"],
        ["registry.test", "audited", "http"],
        ["a.cdn.test", "audited", "http"],
        ["b.cdn.test", "audited", "http"],
      ]);
      expect(job1.every((f) => f.bytesDown > 0 && f.address === "127.0.0.1")).toBe(true);

      const denials = await listAudit(db, { type: "egress.denied" });
      expect(denials.map((e) => [e.jobId, e.data.host, e.data.rule])).toEqual([
        ["job_2", "metadata.test", "address:link-local"],
      ]);

      const dests = await auditedDestinations(db, "acme/app");
      expect(suggestAllowlist(dests)).toEqual([
        { pattern: `*.cdn.test:${port}`, count: 3, hosts: ["a.cdn.test", "b.cdn.test", "c.cdn.test"] },
        { pattern: `registry.test:${port}`, count: 2, hosts: ["registry.test"] },
      ]);
      expect(await registry.metrics()).toContain(
        'airlock_egress_connections_total{decision="audited",protocol="http"} 6',
      );
    } finally {
      await proxy.close();
      await closeServer(upstream);
    }
  });
});
