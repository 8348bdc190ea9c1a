/**
 * Replays fuzz-corpus/*.json: tricky cases found by hand or by the fuzz test, each with the exact
 * expected output. Every case is fed whole, one character at a time, and split at every position.
 */
import { readdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { createMasker, type Detection, SecretSet } from "./index.js";
import { feed, oneByOne } from "./test-support.js";

interface CorpusCase {
  name: string;
  why: string;
  secrets: string[];
  /** Defaults to true. */
  detectCredentials?: boolean;
  /** The input, as the chunks it was found with; they are joined and re-chunked too. */
  chunks: string[];
  expected: string;
  detections?: Detection["kind"][];
}

const dir = join(dirname(fileURLToPath(import.meta.url)), "fuzz-corpus");
const cases: CorpusCase[] = readdirSync(dir)
  .filter((f) => f.endsWith(".json"))
  .sort()
  .flatMap((f) => JSON.parse(readFileSync(join(dir, f), "utf8")) as CorpusCase[]);

describe("fuzz corpus", () => {
  it("is not empty", () => {
    expect(cases.length).toBeGreaterThan(10);
  });

  for (const c of cases) {
    it(c.name, () => {
      const text = c.chunks.join("");
      const splits: string[][] = [c.chunks, [text], oneByOne(text)];
      for (let p = 1; p < text.length; p++) splits.push([text.slice(0, p), text.slice(p)]);
      for (const chunks of splits) {
        const found: Detection["kind"][] = [];
        const set = new SecretSet(c.secrets.map((v, i) => [`S${i}`, v] as const));
        const filter = createMasker(set, {
          detectCredentials: c.detectCredentials ?? true,
          onDetection: (d) => found.push(d.kind),
        });
        expect(feed(filter, chunks), JSON.stringify(chunks)).toBe(c.expected);
        expect(found).toEqual(c.detections ?? []);
      }
    });
  }
});
