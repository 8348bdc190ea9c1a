/** Shared by the masker's tests: a seeded PRNG and ways to feed a filter. */
import type { LogFilter } from "../../logs/pipeline.js";

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
