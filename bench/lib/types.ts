import type { ResultRow } from "./stats.js";

export interface BenchOutput {
  rows: ResultRow[];
  /** Anything else worth keeping in the JSON (raw phase medians, leftovers, settings). */
  details?: Record<string, unknown>;
}

export interface Bench {
  name: string;
  description: string;
  run(): Promise<BenchOutput>;
}
