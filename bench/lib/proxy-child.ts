/**
 * The other processes of the network benchmarks, one role per child, each started with
 * `node --import tsx bench/lib/proxy-child.ts ROLE …` (see startChild in net.ts). In production the
 * proxy is a different process from the job's client, and the upstream is another machine; here
 * each runs in its own process so no two share an event loop with the client being timed.
 * A child prints one JSON line with its ports when it is ready, then serves until killed. The proxy
 * also answers a `flows` line on stdin with one JSON line: what its FlowSink saw since the last
 * ask (count, errors, p50/p99 of each protocol's connectMs: request parsed → upstream open).
 *
 *   source BYTES        upstreams on 127.0.0.1: `bulk` (sends BYTES, then ends), `bulkTls` (the
 *                       same over TLS, self-signed for bench.test), `tiny` (answers the first
 *                       data with "pong\n" and ends), `http` (200 "ok" to any request)
 *   proxy PORT…         the EgressProxy: a `forward` listener (HTTP + CONNECT) and a `tls` one
 *                       routed to the first PORT (the source's bulkTls); `bench.test:PORT` allowed
 *                       for every PORT, bench.test resolving to 127.0.0.1
 *   relay PORT…         a bare pipe relay: one listener per PORT, piping to the upstream's PORT
 *   client              a downloader: each stdin line is a JSON DownloadOptions, answered with
 *                       {"ms": N} or {"error": "…"} (for a client inside a job's namespace)
 *
 * For the job-path measurement the children run elsewhere, told by the environment:
 * BENCH_LISTEN_HOST (default 127.0.0.1) is where listeners bind; for the proxy,
 * BENCH_UPSTREAM_ADDR is what bench.test resolves to (listed in the policy by address too, as an
 * operator lists an internal host, so the address guard lets it through) and BENCH_ANY_CLIENT=1
 * treats every client address as the one job.
 */
import { createServer as createHttpServer } from "node:http";
import { createServer as createNetServer, connect as netConnect, type Server } from "node:net";
import { createInterface } from "node:readline";
import { createServer as createTlsServer } from "node:tls";
import {
  compilePolicy,
  createAddressGuard,
  defaultGuardRules,
  EgressProxy,
  type JobEgress,
} from "../../src/network/proxy/index.js";
import { selfSignedCert } from "../../src/network/proxy/test-support.js";
import { BENCH_HOST, type DownloadOptions, download } from "./net.js";
import { percentile } from "./stats.js";

const LISTEN_HOST = process.env.BENCH_LISTEN_HOST ?? "127.0.0.1";
const UPSTREAM_ADDR = process.env.BENCH_UPSTREAM_ADDR ?? "127.0.0.1";

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, LISTEN_HOST, () => resolve((server.address() as { port: number }).port));
  });
}

function ready(ports: Record<string, number>): void {
  process.stdout.write(`${JSON.stringify(ports)}\n`);
}

const CHUNK = Buffer.alloc(1 << 20, 0x61);

/** Writes `bytes` bytes, honouring backpressure, then ends the stream. */
function sendBytes(s: NodeJS.WritableStream & { destroyed?: boolean }, bytes: number): void {
  let left = bytes;
  const pump = () => {
    while (left > 0) {
      const n = Math.min(left, CHUNK.length);
      left -= n;
      const more = s.write(n === CHUNK.length ? CHUNK : CHUNK.subarray(0, n));
      if (!more) {
        s.once("drain", pump);
        return;
      }
    }
    s.end();
  };
  pump();
}

async function source(bytes: number): Promise<void> {
  const bulk = createNetServer((s) => {
    s.on("error", () => {});
    sendBytes(s, bytes);
  });
  const cert = selfSignedCert([BENCH_HOST]);
  if (!cert) throw new Error("openssl is needed for the TLS upstream");
  const bulkTls = createTlsServer({ key: cert.key, cert: cert.cert }, (s) => {
    s.on("error", () => {});
    sendBytes(s, bytes);
  });
  const tiny = createNetServer((s) => {
    s.on("error", () => {});
    s.once("data", () => s.end("pong\n"));
  });
  const http = createHttpServer({ keepAlive: false }, (_req, res) => {
    res.writeHead(200, { "content-type": "text/plain", "content-length": 3, connection: "close" });
    res.end("ok\n");
  });
  ready({
    bulk: await listen(bulk),
    bulkTls: await listen(bulkTls),
    tiny: await listen(tiny),
    http: await listen(http),
  });
}

async function proxy(ports: number[]): Promise<void> {
  const job: JobEgress = {
    jobId: "job_bench",
    runId: "run_bench",
    runnerId: "rnr_bench",
    policy: compilePolicy({
      allow: ports.flatMap((p) => [
        `${BENCH_HOST}:${p}`,
        ...(UPSTREAM_ADDR === "127.0.0.1" ? [] : [`${UPSTREAM_ADDR}:${p}`]),
      ]),
    }),
  };
  const connectMs = new Map<string, number[]>();
  let flows = 0;
  const errors: string[] = [];
  const p = new EgressProxy({
    jobForClient: (addr) => (addr === "127.0.0.1" || process.env.BENCH_ANY_CLIENT === "1" ? job : undefined),
    // The production sink is a store write; the bench measures the data path, not SQLite. This
    // one keeps a number per flow.
    sink: {
      record(f) {
        flows++;
        if (f.error || f.decision === "denied") errors.push(`${f.protocol} ${f.rule} ${f.error ?? ""}`);
        if (f.connectMs !== null) {
          const xs = connectMs.get(f.protocol) ?? [];
          xs.push(f.connectMs);
          connectMs.set(f.protocol, xs);
        }
      },
    },
    resolver: async (host) => {
      if (host !== BENCH_HOST) throw Object.assign(new Error(`ENOTFOUND ${host}`), { code: "ENOTFOUND" });
      return [UPSTREAM_ADDR];
    },
    // Everything the default guard refuses, except loopback (the upstreams live there).
    guard: createAddressGuard({ rules: defaultGuardRules.filter((r) => r.category !== "loopback") }),
    onError: (e) => process.stderr.write(`[proxy-child] ${e.message}\n`),
  });
  const forward = await p.listen({ role: "forward", host: LISTEN_HOST, port: 0 });
  const tls = await p.listen({ role: "tls", host: LISTEN_HOST, port: 0, upstreamPort: ports[0] as number });
  ready({ forward: forward.port, tls: tls.port });
  createInterface({ input: process.stdin }).on("line", (line) => {
    if (line.trim() !== "flows") return;
    const out = {
      flows,
      errors: errors.slice(0, 20),
      errorCount: errors.length,
      connectMs: Object.fromEntries(
        [...connectMs].map(([k, xs]) => [
          k,
          { n: xs.length, p50: percentile(xs, 50), p99: percentile(xs, 99) },
        ]),
      ),
    };
    flows = 0;
    errors.length = 0;
    connectMs.clear();
    process.stdout.write(`${JSON.stringify(out)}\n`);
  });
}

async function relay(ports: number[]): Promise<void> {
  const out: Record<string, number> = {};
  for (const target of ports) {
    const server = createNetServer((c) => {
      const u = netConnect({ host: UPSTREAM_ADDR, port: target, noDelay: true });
      c.setNoDelay(true);
      c.on("error", () => u.destroy());
      u.on("error", () => c.destroy());
      c.pipe(u);
      u.pipe(c);
    });
    out[String(target)] = await listen(server);
  }
  ready(out);
}

async function client(): Promise<void> {
  ready({});
  createInterface({ input: process.stdin }).on("line", (line) => {
    download(JSON.parse(line) as DownloadOptions).then(
      (ms) => process.stdout.write(`${JSON.stringify({ ms })}\n`),
      (e: unknown) => process.stdout.write(`${JSON.stringify({ error: (e as Error).message })}\n`),
    );
  });
}

const [role, ...rest] = process.argv.slice(2);
const nums = rest.map(Number);
const main =
  role === "source"
    ? source(nums[0] as number)
    : role === "proxy"
      ? proxy(nums)
      : role === "relay"
        ? relay(nums)
        : role === "client"
          ? client()
          : Promise.reject(new Error(`unknown role ${role}`));
main.catch((e: unknown) => {
  process.stderr.write(`[proxy-child] ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
