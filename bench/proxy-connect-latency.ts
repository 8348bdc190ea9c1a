/**
 * What the egress proxy adds to every new connection: connect → first byte of a tiny answer,
 * direct against through the proxy (CONNECT, then "ping" in the tunnel; and an absolute-form GET
 * to the forward listener), and through a bare pipe relay (the floor any relay process pays: one
 * more accept, one more connect, one more hop each way). Upstreams, proxy and relay run in their
 * own child processes. Samples are interleaved path by path, order alternating, and the added
 * latency is taken pair by pair (proxied i − direct i).
 */
import { log, size } from "./lib/env.js";
import { BENCH_HOST, type Child, firstByte, getRequest, startChild } from "./lib/net.js";
import { row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

type Path = "tcp-direct" | "tcp-relay" | "connect" | "http-direct" | "http-proxy";
const PATHS: Path[] = ["tcp-direct", "tcp-relay", "connect", "http-direct", "http-proxy"];

export const proxyConnectLatency: Bench = {
  name: "proxy-connect-latency",
  description: "new connection → first byte: direct vs proxy CONNECT / GET vs bare relay",
  async run() {
    const n = size("PROXY_CONNECTIONS", 2000, 300);
    const warmup = size("PROXY_WARMUP", 200, 50);
    const children: Child[] = [];
    try {
      const src = await startChild("source", [1]);
      children.push(src);
      const { tiny, http } = src.ports as { tiny: number; http: number };
      const proxy = await startChild("proxy", [tiny, http]);
      children.push(proxy);
      const relay = await startChild("relay", [tiny]);
      children.push(relay);
      const forward = proxy.ports.forward as number;
      const relayPort = relay.ports[String(tiny)] as number;
      const httpAuthority = `${BENCH_HOST}:${http}`;

      const once = (p: Path): Promise<number> => {
        switch (p) {
          case "tcp-direct":
            return firstByte({ port: tiny, request: "ping\n" });
          case "tcp-relay":
            return firstByte({ port: relayPort, request: "ping\n" });
          case "connect":
            return firstByte({ port: forward, connect: `${BENCH_HOST}:${tiny}`, request: "ping\n" });
          case "http-direct":
            return firstByte({ port: http, request: getRequest(httpAuthority, false) });
          case "http-proxy":
            return firstByte({ port: forward, request: getRequest(httpAuthority, true) });
        }
      };
      for (let i = 0; i < warmup; i++) for (const p of PATHS) await once(p);
      await proxy.ask("flows");

      const us: Record<Path, number[]> = {
        "tcp-direct": [],
        "tcp-relay": [],
        connect: [],
        "http-direct": [],
        "http-proxy": [],
      };
      for (let i = 0; i < n; i++) {
        const order = i % 2 === 0 ? PATHS : [...PATHS].reverse();
        for (const p of order) us[p].push((await once(p)) * 1000);
        if ((i + 1) % 500 === 0) log(`proxy-connect-latency: ${i + 1}/${n}`);
      }
      // The proxy's own view of each flow: request parsed → upstream connected (resolver, guard, connect).
      const flows = (await proxy.ask("flows")) as {
        flows: number;
        errorCount: number;
        errors: string[];
        connectMs: Record<string, { n: number; p50: number; p99: number }>;
      };
      if (flows.errorCount > 0)
        log(`proxy-connect-latency: ${flows.errorCount} flows failed: ${flows.errors[0]}`);
      const inProxy = (proto: string) => {
        const c = flows.connectMs[proto];
        return { p50: (c?.p50 ?? Number.NaN) * 1000, p99: (c?.p99 ?? Number.NaN) * 1000, n: c?.n ?? 0 };
      };
      const added = (a: Path, b: Path) => us[a].map((v, i) => v - (us[b][i] as number));
      const sTcp = summarize(us["tcp-direct"]);
      const sHttp = summarize(us["http-direct"]);
      const sRelay = summarize(us["tcp-relay"]);
      const B = "proxy-connect-latency";
      const target = [{ stat: "p50" as const, op: "<=" as const, value: 1000 }];
      return {
        rows: [
          row(B, "direct TCP: connect → ping → first byte", "µs", sTcp),
          row(B, "through bare relay: connect → ping → first byte", "µs", sRelay, {
            baseline: { name: "direct TCP", value: sTcp.p50 },
          }),
          row(B, "through proxy: connect → CONNECT 200 → ping → first byte", "µs", summarize(us.connect), {
            baseline: { name: "direct TCP", value: sTcp.p50 },
          }),
          row(B, "direct HTTP GET: connect → first response byte", "µs", sHttp),
          row(
            B,
            "through proxy: absolute-form GET → first response byte",
            "µs",
            summarize(us["http-proxy"]),
            {
              baseline: { name: "direct HTTP", value: sHttp.p50 },
            },
          ),
          row(
            B,
            "added by bare relay (relay − direct TCP, paired)",
            "µs",
            summarize(added("tcp-relay", "tcp-direct")),
          ),
          row(
            B,
            "added by proxy CONNECT (− direct TCP, paired)",
            "µs",
            summarize(added("connect", "tcp-direct")),
            {
              targets: target,
            },
          ),
          row(
            B,
            "added by proxy GET (− direct HTTP, paired)",
            "µs",
            summarize(added("http-proxy", "http-direct")),
            {
              targets: target,
            },
          ),
          row(
            B,
            "proxy CONNECT − bare relay, paired (proxy's own part)",
            "µs",
            summarize(added("connect", "tcp-relay")),
          ),
          row(
            B,
            "inside proxy, CONNECT: request parsed → upstream open (flow.connectMs)",
            "µs",
            inProxy("connect"),
          ),
          row(B, "inside proxy, GET: request parsed → upstream open (flow.connectMs)", "µs", inProxy("http")),
          row(
            B,
            "proxy flows with an error or denial",
            "count",
            { p50: flows.errorCount, p99: Number.NaN, n: flows.flows },
            { targets: [{ stat: "p50", op: "<=", value: 0 }] },
          ),
        ],
        details: {
          connections: n,
          warmup,
          medianUs: Object.fromEntries(PATHS.map((p) => [p, summarize(us[p]).p50])),
          proxyFlows: flows,
        },
      };
    } finally {
      for (const c of children) await c.stop();
    }
  },
};
