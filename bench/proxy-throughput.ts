/**
 * Egress proxy throughput: a 100 MB download from a plain TCP upstream on 127.0.0.1, direct
 * against through the proxy's CONNECT tunnel, and through a bare `net` pipe relay (what any
 * Node relay costs; proxy / relay is the proxy's own overhead). Optionally the same over TLS,
 * direct against the transparent tls listener (SNI routing). Upstream, proxy and relay each run
 * in their own child process; the client is this process. Repetitions are paired and their order
 * alternates, so drift hits every path alike; ratios are taken pair by pair.
 * Then the same download on a job's real path (lib/proxy-job-path.ts): the client inside a job
 * network, the upstream in another namespace, direct (the job's nft passthrough) against CONNECT
 * through the proxy on the job's host end. BENCH_PROXY_JOB_PATH=0 skips it.
 */
import { log, size } from "./lib/env.js";
import { BENCH_HOST, type Child, cpuMs, download, startChild } from "./lib/net.js";
import { type JobPath, type JobPathRates, measureJobPath } from "./lib/proxy-job-path.js";
import { type ResultRow, row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

type Path = "direct" | "connect" | "relay" | "tls-direct" | "tls-proxy";

export const proxyThroughput: Bench = {
  name: "proxy-throughput",
  description:
    "100 MB download: direct vs proxy CONNECT vs bare pipe relay (+ TLS, + a job's real path: netns, veth, nft)",
  async run() {
    const mb = size("PROXY_MB", 100, 20);
    const reps = size("PROXY_REPEATS", 10, 3);
    const withTls = process.env.BENCH_PROXY_TLS !== "0";
    const withJobPath = process.env.BENCH_PROXY_JOB_PATH !== "0";
    const bytes = mb * 1_000_000;
    const children: Child[] = [];
    try {
      const src = await startChild("source", [bytes]);
      children.push(src);
      const { bulk, bulkTls } = src.ports as { bulk: number; bulkTls: number };
      const proxy = await startChild("proxy", [bulkTls, bulk]);
      children.push(proxy);
      const relay = await startChild("relay", [bulk]);
      children.push(relay);
      const relayPort = relay.ports[String(bulk)] as number;

      const paths: Path[] = ["direct", "connect", "relay"];
      if (withTls) paths.push("tls-direct", "tls-proxy");
      const once = (p: Path): Promise<number> => {
        switch (p) {
          case "direct":
            return download({ port: bulk, expectBytes: bytes });
          case "connect":
            return download({
              port: proxy.ports.forward as number,
              connect: `${BENCH_HOST}:${bulk}`,
              expectBytes: bytes,
            });
          case "relay":
            return download({ port: relayPort, expectBytes: bytes });
          case "tls-direct":
            return download({ port: bulkTls, tlsServername: BENCH_HOST, expectBytes: bytes });
          case "tls-proxy":
            return download({
              port: proxy.ports.tls as number,
              tlsServername: BENCH_HOST,
              expectBytes: bytes,
            });
        }
      };
      // Warm-up: JIT, TCP buffers, the TLS session machinery.
      for (const p of paths) await once(p);

      const rate: Record<Path, number[]> = {
        direct: [],
        connect: [],
        relay: [],
        "tls-direct": [],
        "tls-proxy": [],
      };
      // CPU time of each process over all of a path's downloads, against their summed duration:
      // which process is the bottleneck. Summed, because /proc counts in 10 ms ticks.
      const procs = { client: process.pid, source: src.pid, proxy: proxy.pid, relay: relay.pid };
      type Proc = keyof typeof procs;
      const cpuUsed = new Map<Path, Record<Proc, number>>(
        paths.map((p) => [p, { client: 0, source: 0, proxy: 0, relay: 0 }]),
      );
      const busyMs = new Map<Path, number>(paths.map((p) => [p, 0]));
      for (let r = 0; r < reps; r++) {
        const order = r % 2 === 0 ? paths : [...paths].reverse();
        for (const p of order) {
          const before = Object.fromEntries(Object.entries(procs).map(([k, pid]) => [k, cpuMs(pid)]));
          const ms = await once(p);
          rate[p].push(bytes / 1e6 / (ms / 1000));
          busyMs.set(p, (busyMs.get(p) ?? 0) + ms);
          const used = cpuUsed.get(p) as Record<Proc, number>;
          for (const [k, pid] of Object.entries(procs)) used[k as Proc] += cpuMs(pid) - (before[k] as number);
        }
        log(
          `proxy-throughput: ${r + 1}/${reps} ${paths.map((p) => `${p} ${Math.round(rate[p][r] as number)}`).join(", ")} MB/s`,
        );
      }
      const flows = (await proxy.ask("flows")) as { flows: number; errorCount: number; errors: string[] };
      if (flows.errorCount > 0) throw new Error(`proxy flows failed: ${flows.errors.join("; ")}`);
      const paired = (a: Path, b: Path) => rate[a].map((v, i) => v / (rate[b][i] as number));
      // For rates the "p99" is the slow tail: the 1st percentile, i.e. the slowest of 10.
      const rateSummary = (xs: number[]) => {
        const s = summarize(xs);
        return { p50: s.p50, p99: s.min, n: s.n };
      };
      const ratioSummary = (xs: number[]) => {
        const s = summarize(xs);
        return { p50: s.p50, p99: s.min, n: s.n };
      };
      const B = "proxy-throughput";
      const sDirect = rateSummary(rate.direct);
      const sRelay = rateSummary(rate.relay);
      const tail = "p99 = slowest repetition";
      const rows = [
        row(B, `direct download ${mb} MB (TCP, 127.0.0.1)`, "MB/s", sDirect, { note: tail }),
        row(B, "through a bare net.pipe relay (child process)", "MB/s", sRelay, {
          baseline: { name: "direct", value: sDirect.p50 },
          note: tail,
        }),
        row(B, "through EgressProxy CONNECT (child process)", "MB/s", rateSummary(rate.connect), {
          baseline: { name: "direct", value: sDirect.p50 },
          note: tail,
        }),
        row(B, "CONNECT / direct, paired", "ratio", ratioSummary(paired("connect", "direct")), {
          targets: [{ stat: "p50", op: ">=", value: 0.8 }],
          note: "p99 = lowest pair",
        }),
        row(B, "bare relay / direct, paired", "ratio", ratioSummary(paired("relay", "direct")), {
          note: "p99 = lowest pair",
        }),
        row(
          B,
          "CONNECT / bare relay, paired (proxy's own overhead)",
          "ratio",
          ratioSummary(paired("connect", "relay")),
          {
            note: "p99 = lowest pair",
          },
        ),
      ];
      if (withTls) {
        const sTls = rateSummary(rate["tls-direct"]);
        rows.push(
          row(B, `direct TLS download ${mb} MB`, "MB/s", sTls, { note: tail }),
          row(B, "through EgressProxy transparent TLS (SNI)", "MB/s", rateSummary(rate["tls-proxy"]), {
            baseline: { name: "direct TLS", value: sTls.p50 },
            note: tail,
          }),
          row(
            B,
            "transparent TLS / direct TLS, paired",
            "ratio",
            ratioSummary(paired("tls-proxy", "tls-direct")),
            {
              note: "p99 = lowest pair",
            },
          ),
        );
      }
      let jobPath: JobPathRates | undefined;
      if (withJobPath) {
        const links = (process.env.BENCH_PROXY_LINKS ?? "10gbit,1gbit").split(",").filter(Boolean);
        jobPath = await measureJobPath(bytes, reps, links);
        rows.push(...jobPathRows(B, mb, jobPath, rateSummary, ratioSummary));
      }
      return {
        rows,
        details: {
          mb,
          bytes,
          repetitions: reps,
          jobPath,
          paths,
          mbPerSec: rate,
          proxyFlows: flows.flows,
          // CPU use of each process while each path's downloads ran, % of one core.
          cpuPercentOfOneCore: Object.fromEntries(
            paths.map((p) => {
              const used = cpuUsed.get(p) as Record<Proc, number>;
              const total = busyMs.get(p) as number;
              return [
                p,
                Object.fromEntries(Object.entries(used).map(([k, v]) => [k, Math.round((v / total) * 100)])),
              ];
            }),
          ),
        },
      };
    } finally {
      for (const c of children) await c.stop();
    }
  },
};

type Summary = { p50: number; p99: number; n: number };

const jobPathName: Record<JobPath, string> = {
  direct: "direct (nft passthrough)",
  connect: "CONNECT through EgressProxy on the job's host end",
  relay: "a bare Node pipe relay at the same place",
  "c-copy": "C relay, read/write threads (c-relay.c), same place",
  "c-splice": "C relay, splice(2) threads (c-relay.c), same place",
};

/** Rows for the job path: each path against direct, and the proxy against the C yardstick. */
function jobPathRows(
  B: string,
  mb: number,
  j: JobPathRates,
  rateSummary: (xs: number[]) => Summary,
  ratioSummary: (xs: number[]) => Summary,
): ResultRow[] {
  const rows: ResultRow[] = [];
  const phases: [string, Partial<Record<JobPath, number[]>>][] = [
    ["job path", j.rates],
    ...Object.entries(j.shaped).map(([rate, r]): [string, Partial<Record<JobPath, number[]>>] => [
      `job path, link ${rate}`,
      r,
    ]),
  ];
  const pair = (a: number[], b: number[]) => a.map((v, i) => v / (b[i] as number));
  for (const [label, rates] of phases) {
    const direct = rates.direct as number[];
    const sDirect = rateSummary(direct);
    for (const [p, xs] of Object.entries(rates) as [JobPath, number[]][]) {
      const name = p === "direct" ? `${label}: ${jobPathName[p]}, ${mb} MB` : `${label}: ${jobPathName[p]}`;
      rows.push(
        row(B, name, "MB/s", rateSummary(xs), {
          ...(p === "direct" ? {} : { baseline: { name: "direct", value: sDirect.p50 } }),
          note: "p99 = slowest repetition",
        }),
      );
    }
    const connect = rates.connect as number[];
    rows.push(
      row(B, `${label}: CONNECT / direct, paired`, "ratio", ratioSummary(pair(connect, direct)), {
        targets: [{ stat: "p50", op: ">=", value: 0.8 }],
        note: "p99 = lowest pair",
      }),
    );
    for (const y of ["relay", "c-copy", "c-splice"] as const) {
      const ys = rates[y];
      if (!ys) continue;
      rows.push(
        row(
          B,
          `${label}: CONNECT / ${y === "relay" ? "bare Node relay" : y}, paired`,
          "ratio",
          ratioSummary(pair(connect, ys)),
          {
            note: "p99 = lowest pair",
          },
        ),
      );
    }
    if (rates["c-copy"])
      rows.push(
        row(
          B,
          `${label}: C relay (read/write) / direct, paired`,
          "ratio",
          ratioSummary(pair(rates["c-copy"], direct)),
          {
            note: "the best any relay did here; p99 = lowest pair",
          },
        ),
      );
  }
  return rows;
}
