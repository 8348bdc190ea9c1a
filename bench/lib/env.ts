/** Sizes come from the environment so a quick run (BENCH_QUICK=1) takes seconds, not minutes. */

export const quick = process.env.BENCH_QUICK === "1";

/** BENCH_<NAME> if set, else the quick or full default. */
export function size(name: string, full: number, quickValue: number): number {
  const raw = process.env[`BENCH_${name}`];
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isInteger(n) || n <= 0)
      throw new Error(`BENCH_${name} must be a positive integer, got ${raw}`);
    return n;
  }
  return quick ? quickValue : full;
}

let wallOffset = performance.timeOrigin;

/**
 * Re-anchors wallMs() to the realtime clock: waits (at most ~1 ms) for Date.now() to tick, so the
 * offset is exact to a few µs. performance.now() is monotonic and may drift from the realtime
 * clock under NTP slewing, so call this before each timed sample.
 */
export function calibrateWall(): void {
  const start = Date.now();
  let now = start;
  while (now === start) now = Date.now();
  wallOffset = now - performance.now();
}

/** Wall-clock milliseconds with µs resolution, comparable with `date +%s%N` inside a sandbox. */
export function wallMs(): number {
  return wallOffset + performance.now();
}

export function log(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}
