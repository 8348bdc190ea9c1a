/** Percentiles and the result row every benchmark reports. */

export interface Summary {
  n: number;
  min: number;
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

/** Nearest-rank percentile over a copy of the samples (p in 0..100). */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))] as number;
}

export function summarize(samples: readonly number[]): Summary {
  const sorted = [...samples].sort((a, b) => a - b);
  const n = sorted.length;
  return {
    n,
    min: sorted[0] ?? Number.NaN,
    p50: percentile(sorted, 50),
    p99: percentile(sorted, 99),
    max: sorted[n - 1] ?? Number.NaN,
    mean: n ? sorted.reduce((a, b) => a + b, 0) / n : Number.NaN,
  };
}

export interface Target {
  /** Which statistic of the row the target applies to. */
  stat: "p50" | "p99";
  op: "<=" | ">=";
  value: number;
}

export interface ResultRow {
  bench: string;
  name: string;
  unit: string;
  p50: number;
  p99: number;
  n: number;
  /** A baseline measured in the same run; ratio = p50 / baseline.value. */
  baseline?: { name: string; value: number };
  ratio?: number;
  targets?: Target[];
  /** Undefined when the row has no target. */
  pass?: boolean;
  note?: string;
}

export function row(
  bench: string,
  name: string,
  unit: string,
  s: Pick<Summary, "p50" | "p99" | "n">,
  opts: { baseline?: { name: string; value: number }; targets?: Target[]; note?: string } = {},
): ResultRow {
  const r: ResultRow = { bench, name, unit, p50: s.p50, p99: s.p99, n: s.n };
  if (opts.baseline) {
    r.baseline = opts.baseline;
    r.ratio = s.p50 / opts.baseline.value;
  }
  if (opts.targets) {
    r.targets = opts.targets;
    r.pass = opts.targets.every((t) => {
      const v = t.stat === "p50" ? s.p50 : s.p99;
      return t.op === "<=" ? v <= t.value : v >= t.value;
    });
  }
  if (opts.note) r.note = opts.note;
  return r;
}

export function fmt(v: number | undefined): string {
  if (v === undefined || Number.isNaN(v)) return "-";
  const a = Math.abs(v);
  if (a >= 10_000) return Math.round(v).toLocaleString("en-US");
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  return v.toFixed(2);
}

export function targetText(targets: readonly Target[] | undefined): string {
  if (!targets) return "-";
  return targets.map((t) => `${t.stat} ${t.op} ${fmt(t.value)}`).join(", ");
}

/** A plain fixed-width table; the same rows go to JSON unformatted. */
export function renderTable(rows: readonly ResultRow[]): string {
  const head = ["benchmark", "unit", "p50", "p99", "n", "baseline", "base p50", "ratio", "target", "ok"];
  const body = rows.map((r) => [
    r.name,
    r.unit,
    fmt(r.p50),
    fmt(r.p99),
    String(r.n),
    r.baseline?.name ?? "-",
    fmt(r.baseline?.value),
    r.ratio === undefined ? "-" : `${r.ratio.toFixed(2)}x`,
    targetText(r.targets),
    r.pass === undefined ? "" : r.pass ? "PASS" : "FAIL",
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i >= 2 && i <= 4 ? c.padStart(widths[i] as number) : c.padEnd(widths[i] as number)))
      .join("  ");
  return [line(head), widths.map((w) => "-".repeat(w)).join("  "), ...body.map(line)].join("\n");
}
