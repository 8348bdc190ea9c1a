/**
 * Secret masker throughput (src/secrets/masker) with 10, 100 and 1,000 registered secrets, each
 * with its derived needles (base64 ×3 alignments, base64url, URL, JSON, hex…), over a generated
 * build log written in 64 KiB chunks. Beside it, in the same run and over the same needles, two
 * naive maskers: one indexOf loop per needle (how the GitHub Actions runner masks) and one big
 * regex alternation. The naive ones get an easy job: each chunk on its own, no matches carried
 * across chunks, and, being slow, only a prefix of the log (sized to take about a second).
 *
 * Throughput is bytes of log (all ASCII) per second of wall time, MB = 10^6 bytes; the CPU time
 * of each run is kept in the JSON too, since on a shared machine it is the steadier figure.
 */
import { createMasker, SecretSet } from "../src/secrets/masker/index.js";
import { log, size } from "./lib/env.js";
import { row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

const B = "masker-throughput";
const CHUNK = 64 * 1024;
const MASK = "***";

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TOKEN = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

function randomSecret(rand: () => number): string {
  const len = 20 + Math.floor(rand() * 21);
  let s = "";
  for (let i = 0; i < len; i++) s += TOKEN[Math.floor(rand() * TOKEN.length)];
  return s;
}

/** Lines that look like a build: timestamps, npm/compiler chatter, paths, hashes, numbers. */
function logLines(rand: () => number, count: number): string[] {
  const words = [
    "npm",
    "install",
    "added",
    "packages",
    "in",
    "audited",
    "compiling",
    "src/index.ts",
    "tsc",
    "vitest",
    "passed",
    "failed",
    "skipped",
    "warning:",
    "error",
    "info",
    "debug",
    "GET",
    "POST",
    "/api/v1/runs",
    "200",
    "OK",
    "Downloading",
    "https://registry.npmjs.org/",
    "node_modules/.bin/esbuild",
    "sha256:",
    "Step",
    "Run",
    "actions/checkout",
    "cache",
    "restored",
    "from",
    "key:",
    "linux-x64",
    "built",
    "ms",
  ];
  const pick = () => words[Math.floor(rand() * words.length)] as string;
  const hex = (n: number) => {
    let h = "";
    for (let i = 0; i < n; i++) h += "0123456789abcdef"[Math.floor(rand() * 16)];
    return h;
  };
  return Array.from({ length: count }, (_, i) => {
    const n = 3 + Math.floor(rand() * 10);
    const parts = Array.from({ length: n }, pick);
    if (rand() < 0.3) parts.push(hex(rand() < 0.5 ? 12 : 40));
    if (rand() < 0.3) parts.push(`${Math.floor(rand() * 100000)}`);
    const ts = `2026-11-25T07:${String(i % 60).padStart(2, "0")}:${String((i * 7) % 60).padStart(2, "0")}.${String(i % 1000).padStart(3, "0")}Z`;
    return `${ts} ${parts.join(" ")}\n`;
  });
}

/** About `bytes` of log with one secret (raw or one of its encodings) every ~2,000 lines. */
function buildLog(rand: () => number, lines: readonly string[], plants: readonly string[], bytes: number) {
  const parts: string[] = [];
  let len = 0;
  let planted = 0;
  while (len < bytes) {
    let line = lines[Math.floor(rand() * lines.length)] as string;
    if (rand() < 1 / 2000) {
      line = `export TOKEN=${plants[Math.floor(rand() * plants.length)]} # ${line}`;
      planted++;
    }
    parts.push(line);
    len += line.length;
  }
  const text = parts.join("");
  const chunks: string[] = [];
  for (let i = 0; i < text.length; i += CHUNK) chunks.push(text.slice(i, i + CHUNK));
  return { text, chunks, planted };
}

type Masker = (chunks: readonly string[]) => number;

function indexOfMasker(needles: readonly string[]): Masker {
  // The runner's way: for each needle, find every occurrence; then replace the merged spans.
  return (chunks) => {
    let outLen = 0;
    for (const chunk of chunks) {
      const spans: [number, number][] = [];
      for (const n of needles) {
        for (let i = chunk.indexOf(n); i !== -1; i = chunk.indexOf(n, i + 1)) spans.push([i, i + n.length]);
      }
      if (spans.length === 0) {
        outLen += chunk.length;
        continue;
      }
      spans.sort((a, b) => a[0] - b[0]);
      let out = "";
      let p = 0;
      for (const [s, e] of spans) {
        if (e <= p) continue;
        out += chunk.slice(p, Math.max(p, s)) + (s >= p ? MASK : "");
        p = e;
      }
      outLen += out.length + chunk.length - p;
    }
    return outLen;
  };
}

function regexMasker(needles: readonly string[]): Masker {
  const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  // Longest first, so a needle is not cut short by one of its prefixes.
  const re = new RegExp(
    [...needles]
      .sort((a, b) => b.length - a.length)
      .map(escapeRegExp)
      .join("|"),
    "g",
  );
  return (chunks) => {
    let outLen = 0;
    for (const chunk of chunks) outLen += chunk.replace(re, MASK).length;
    return outLen;
  };
}

function automatonMasker(set: SecretSet): Masker {
  return (chunks) => {
    const m = createMasker(set);
    let outLen = 0;
    for (const c of chunks) outLen += m.push(c).length;
    return outLen + m.flush().length;
  };
}

interface Sample {
  mbps: number;
  cpuMbps: number;
}

function measure(mask: Masker, chunks: readonly string[], runs: number): Sample[] {
  const bytes = chunks.reduce((a, c) => a + c.length, 0);
  const out: Sample[] = [];
  for (let r = 0; r < runs; r++) {
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    mask(chunks);
    const wall = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    out.push({ mbps: bytes / 1e6 / wall, cpuMbps: bytes / 1e6 / ((cpu.user + cpu.system) / 1e6) });
  }
  return out;
}

/** Chunks of a log prefix that one run of `mask` gets through in about `seconds`. */
function prefixFor(mask: Masker, chunks: readonly string[], seconds: number): string[] {
  const probe = chunks.slice(0, 4);
  const t0 = performance.now();
  mask(probe);
  const perChunk = (performance.now() - t0) / 1000 / probe.length;
  const n = Math.max(4, Math.min(chunks.length, Math.round(seconds / perChunk)));
  return chunks.slice(0, n);
}

/**
 * The floor any string masker pays: read every character and look it up in a 64 KiB table, no
 * matching. On a shared machine this shows how much CPU the run actually got.
 */
function readEveryChar(): Masker {
  const table = new Uint8Array(65536).fill(1);
  return (chunks) => {
    let x = 0;
    for (const c of chunks) for (let i = 0; i < c.length; i++) x += table[c.charCodeAt(i)] as number;
    return x;
  };
}

const median = (xs: number[]) => summarize(xs).p50;
/** For rates the slow tail is the low end: report the slowest run where the table says p99. */
function rateSummary(xs: number[]) {
  const s = summarize(xs);
  return { ...s, p99: s.min };
}

interface Case {
  count: number;
  set: SecretSet;
  needles: readonly string[];
  chunks: string[];
  masker: Sample[];
  details: Record<string, unknown>;
}

export const maskerThroughput: Bench = {
  name: "masker-throughput",
  description:
    "secret masker (Aho-Corasick, streaming) vs indexOf-per-needle and big-regex, 10/100/1000 secrets",
  async run() {
    const logMiB = size("MASKER_LOG_MIB", 64, 8);
    const runs = size("MASKER_RUNS", 5, 3);
    const baselineMs = size("MASKER_BASELINE_MS", 1000, 300);
    const rand = prng(0x5ec12e7);
    const lines = logLines(rand, 5000);

    const cases: Case[] = [];
    for (const count of [10, 100, 1000]) {
      const set = new SecretSet();
      const values: string[] = [];
      for (let i = 0; i < count; i++) {
        const v = randomSecret(rand);
        values.push(v);
        set.addSecret(`SECRET_${i}`, v);
      }
      const needles = set.needleTexts();
      const t0 = performance.now();
      const automaton = set.automaton();
      const buildMs = performance.now() - t0;
      const { text, chunks, planted } = buildLog(rand, lines, needles, logMiB * 1024 * 1024);
      log(
        `${B}: ${count} secrets, ${needles.length} needles, ${automaton.states} states, built in ${buildMs.toFixed(0)} ms; ${(text.length / 1e6).toFixed(1)} MB log, ${planted} planted`,
      );
      // Correctness first: every planted value masked, none of the secrets left.
      const m = createMasker(set);
      let masked = "";
      for (const c of chunks) masked += m.push(c);
      masked += m.flush();
      const masks = masked.split(MASK).length - 1;
      const leaked = values.filter((v) => masked.includes(v)).length;
      if (masks < planted || leaked > 0) {
        throw new Error(
          `${B}: masker missed secrets (${masks} masks for ${planted} planted, ${leaked} leaked)`,
        );
      }
      cases.push({
        count,
        set,
        needles,
        chunks,
        masker: [],
        details: {
          secrets: count,
          needles: needles.length,
          states: automaton.states,
          alphabet: automaton.K,
          denseStates: automaton.D,
          buildMs,
          logBytes: text.length,
          planted,
          masks,
        },
      });
    }

    // Masker runs and the floor interleaved, so load that comes and goes hits every size alike.
    const floorChunks = (cases[0] as Case).chunks;
    const floor: Sample[] = [];
    for (let r = 0; r < runs; r++) {
      for (const c of cases) c.masker.push(...measure(automatonMasker(c.set), c.chunks, 1));
      floor.push(...measure(readEveryChar(), floorChunks, 1));
    }

    const rows = [];
    const p50 = new Map<number, { masker: number; best: number }>();
    for (const c of cases) {
      const idx = indexOfMasker(c.needles);
      const idxChunks = prefixFor(idx, c.chunks, baselineMs / 1000);
      const rx0 = performance.now();
      const rgx = regexMasker(c.needles);
      const regexCompileMs = performance.now() - rx0;
      const rxChunks = prefixFor(rgx, c.chunks, baselineMs / 1000);
      const ix: Sample[] = [];
      const rx: Sample[] = [];
      for (let r = 0; r < runs; r++) {
        ix.push(...measure(idx, idxChunks, 1));
        rx.push(...measure(rgx, rxChunks, 1));
      }
      const mkP50 = median(c.masker.map((s) => s.mbps));
      const ixP50 = median(ix.map((s) => s.mbps));
      const rxP50 = median(rx.map((s) => s.mbps));
      const best = Math.max(ixP50, rxP50);
      p50.set(c.count, { masker: mkP50, best });
      log(
        `${B}: ${c.count} secrets: masker ${mkP50.toFixed(1)} MB/s, indexOf ${ixP50.toFixed(2)}, regex ${rxP50.toFixed(2)}`,
      );
      rows.push(
        row(
          B,
          `masker, ${c.count} secrets (${c.needles.length} needles)`,
          "MB/s",
          rateSummary(c.masker.map((s) => s.mbps)),
          {
            baseline: { name: ixP50 >= rxP50 ? "indexOf per needle" : "regex alternation", value: best },
            targets: c.count === 1000 ? [{ stat: "p50", op: ">=", value: 150 }] : undefined,
            note: "p99 column = slowest run",
          },
        ),
        row(B, `naive indexOf per needle, ${c.count} secrets`, "MB/s", rateSummary(ix.map((s) => s.mbps)), {
          note: `over the first ${(idxChunks.length * CHUNK) / 2 ** 20} MiB`,
        }),
        row(B, `naive regex alternation, ${c.count} secrets`, "MB/s", rateSummary(rx.map((s) => s.mbps)), {
          note: `over the first ${(rxChunks.length * CHUNK) / 2 ** 20} MiB`,
        }),
        row(B, `automaton build, ${c.count} secrets`, "ms", {
          p50: c.details.buildMs as number,
          p99: c.details.buildMs as number,
          n: 1,
        }),
      );
      Object.assign(c.details, {
        regexCompileMs,
        masker: c.masker,
        indexOf: { bytes: idxChunks.length * CHUNK, samples: ix },
        regex: { bytes: rxChunks.length * CHUNK, samples: rx },
        cpuMbps: {
          masker: median(c.masker.map((s) => s.cpuMbps)),
          indexOf: median(ix.map((s) => s.cpuMbps)),
          regex: median(rx.map((s) => s.cpuMbps)),
        },
      });
    }

    const c1000 = cases.find((c) => c.count === 1000) as Case;
    const at10 = p50.get(10)?.masker as number;
    const at1000 = p50.get(1000) as { masker: number; best: number };
    const vsNaive = at1000.masker / at1000.best;
    const flatness = at10 / at1000.masker;
    rows.push(
      row(
        B,
        "masker, 1000 secrets, per CPU-second (user+sys)",
        "MB/s",
        rateSummary(c1000.masker.map((s) => s.cpuMbps)),
        {
          note: "the same runs as above, divided by the process's CPU time instead of wall time",
        },
      ),
      row(
        B,
        "floor: read every char + table lookup, no matching",
        "MB/s",
        rateSummary(floor.map((s) => s.mbps)),
        {
          note: "what the machine gave this process; no masker can beat it",
        },
      ),
      row(
        B,
        "masker ÷ best naive, 1000 secrets",
        "x",
        { p50: vsNaive, p99: vsNaive, n: 1 },
        {
          targets: [{ stat: "p50", op: ">=", value: 30 }],
        },
      ),
      row(
        B,
        "masker 10 secrets ÷ masker 1000 secrets",
        "x",
        { p50: flatness, p99: flatness, n: 1 },
        {
          targets: [{ stat: "p50", op: "<=", value: 2 }],
        },
      ),
    );
    return {
      rows,
      details: { logMiB, runs, chunkBytes: CHUNK, baselineMs, floor, results: cases.map((c) => c.details) },
    };
  },
};
