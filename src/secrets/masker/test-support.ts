/**
 * Shared by the masker's tests (excluded from the build): a seeded PRNG, ways to feed a filter,
 * and the fuzz oracle.
 */
import type { LogFilter } from "../../logs/pipeline.js";
import { MASK } from "./needle-stream.js";

/** mulberry32: small, seeded, good enough to pick chunk sizes and characters. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t ^= t + Math.imul(t ^ (t >>> 7), 61 | t);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function feed(filter: LogFilter, chunks: readonly string[]): string {
  let out = "";
  for (const c of chunks) out += filter.push(c);
  return out + filter.flush();
}

export function oneByOne(text: string): string[] {
  return Array.from({ length: text.length }, (_, i) => text[i] as string);
}

export function randomChunks(text: string, rand: () => number, maxChunk = 8): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const n = Math.floor(rand() * (maxChunk + 1)); // empty chunks too
    out.push(text.slice(i, i + n));
    i += n;
  }
  return out;
}

/**
 * The fuzz oracle: the slowest obviously-correct masker. It sees the whole text at once, finds
 * every occurrence of every needle (overlapping ones too), merges overlapping or touching spans
 * and replaces each with `***`. A needle's single space stands for any run of separators, as in
 * the automaton.
 */
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

export function referenceMask(needles: readonly string[], text: string): string {
  const spans: [number, number][] = [];
  for (const needle of needles) {
    const re = new RegExp(needle.split(" ").map(escapeRegExp).join("[ \\t\\r\\n]+"), "g");
    for (let m = re.exec(text); m !== null; m = re.exec(text)) {
      spans.push([m.index, m.index + m[0].length]);
      re.lastIndex = m.index + 1;
    }
  }
  spans.sort((a, b) => a[0] - b[0]);
  let out = "";
  let p = 0;
  let cur: [number, number] | undefined;
  for (const s of spans) {
    if (cur && s[0] <= cur[1]) {
      cur[1] = Math.max(cur[1], s[1]);
      continue;
    }
    if (cur) {
      out += text.slice(p, cur[0]) + MASK;
      p = cur[1];
    }
    cur = [s[0], s[1]];
  }
  if (cur) {
    out += text.slice(p, cur[0]) + MASK;
    p = cur[1];
  }
  return out + text.slice(p);
}
