/**
 * `npm run bench [-- NAME…]`: runs the benchmarks (all, or those named), prints one table and
 * writes every row, with the machine and settings, to bench/results/<timestamp>.json.
 * Sizes: BENCH_QUICK=1 for a fast smoke run; BENCH_<NAME>=N overrides one size (see each file).
 */
import { execFileSync } from "node:child_process";
import { mkdir, readFile, writeFile } from "node:fs/promises";
import { cpus, loadavg, release, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { artifactStore } from "./artifact-store.js";
import { auditThroughput } from "./audit-throughput.js";
import { brokerExchange } from "./broker-exchange.js";
import { concurrentJobs } from "./concurrent-jobs.js";
import { identityThroughput } from "./identity-throughput.js";
import { log, quick } from "./lib/env.js";
import { type ResultRow, renderTable } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";
import { maskerThroughput } from "./masker-throughput.js";
import { networkSetup } from "./network-setup.js";
import { policyLatency } from "./policy-latency.js";
import { provenanceBench } from "./provenance.js";
import { proxyConnectLatency } from "./proxy-connect-latency.js";
import { proxyThroughput } from "./proxy-throughput.js";
import { startOverhead } from "./start-overhead.js";

const benches: Bench[] = [
  startOverhead,
  concurrentJobs,
  policyLatency,
  auditThroughput,
  networkSetup,
  proxyThroughput,
  proxyConnectLatency,
  identityThroughput,
  brokerExchange,
  maskerThroughput,
  provenanceBench,
  artifactStore,
];

async function machine() {
  const nproc = (() => {
    try {
      return execFileSync("nproc", { encoding: "utf8" }).trim();
    } catch {
      return String(cpus().length);
    }
  })();
  const mounts = await readFile("/proc/mounts", "utf8").catch(() => "");
  const cgroup =
    /\scgroup2\s/.test(mounts) && !/\scgroup\s/.test(mounts)
      ? "v2"
      : /\scgroup\s/.test(mounts)
        ? "v1"
        : "unknown";
  const bwrap = (() => {
    try {
      return execFileSync("/usr/bin/bwrap", ["--version"], { encoding: "utf8" }).trim();
    } catch {
      return "unknown";
    }
  })();
  return {
    nproc,
    cpuModel: cpus()[0]?.model ?? "unknown",
    memGiB: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    cgroup,
    node: process.version,
    bwrap,
  };
}

async function main() {
  const wanted = process.argv.slice(2).filter((a) => a !== "--");
  const unknown = wanted.filter((w) => !benches.some((b) => b.name === w));
  if (unknown.length > 0) {
    process.stderr.write(
      `unknown benchmark(s): ${unknown.join(", ")}\navailable: ${benches.map((b) => b.name).join(", ")}\n`,
    );
    process.exit(2);
  }
  const selected = wanted.length ? benches.filter((b) => wanted.includes(b.name)) : benches;
  const startedAt = new Date();
  const info = await machine();
  log(
    `${info.nproc} cores, kernel ${info.kernel}, cgroup ${info.cgroup}, node ${info.node}${quick ? ", QUICK" : ""}`,
  );

  // Other work on the machine shows up in every figure; keep the load beside the numbers.
  const loadBefore = loadavg().map((l) => Math.round(l * 100) / 100);
  const rows: ResultRow[] = [];
  const details: Record<string, unknown> = {};
  const durations: Record<string, number> = {};
  for (const b of selected) {
    log(`${b.name}: ${b.description}`);
    const t0 = performance.now();
    const out = await b.run();
    durations[b.name] = Math.round(performance.now() - t0);
    rows.push(...out.rows);
    if (out.details) details[b.name] = out.details;
    log(`${b.name}: done in ${(durations[b.name] / 1000).toFixed(1)} s`);
  }

  const loadAfter = loadavg().map((l) => Math.round(l * 100) / 100);
  process.stdout.write(`\n${renderTable(rows)}\n`);
  process.stdout.write(
    `\nload average (1/5/15 min): before ${loadBefore.join(" ")}, after ${loadAfter.join(" ")}\n`,
  );
  const failed = rows.filter((r) => r.pass === false);
  const judged = rows.filter((r) => r.pass !== undefined);
  process.stdout.write(`\ntargets: ${judged.length - failed.length}/${judged.length} met\n`);

  const here = dirname(fileURLToPath(import.meta.url));
  const dir = join(here, "results");
  await mkdir(dir, { recursive: true });
  const file = join(dir, `${startedAt.toISOString().replace(/[:.]/g, "-")}.json`);
  await writeFile(
    file,
    `${JSON.stringify({ startedAt: startedAt.toISOString(), quick, machine: info, loadBefore, loadAfter, benches: selected.map((b) => b.name), durationsMs: durations, rows, details }, null, 2)}\n`,
  );
  process.stdout.write(`results: ${file}\n`);
}

main().catch((err) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
