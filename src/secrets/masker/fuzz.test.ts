/**
 * Random logs, secrets and chunkings (seeded, so a failure replays): the streaming masker must
 * agree with the whole-text reference, and the full filter must not depend on how text is
 * chunked. A failing case worth keeping goes into fuzz-corpus/ (see corpus.test.ts).
 */
import { describe, expect, it } from "vitest";
import { createMasker, SecretSet } from "./index.js";
import { feed, oneByOne, prng, randomChunks, referenceMask } from "./test-support.js";

const ITERATIONS = 500;

function pick<T>(rand: () => number, xs: readonly T[]): T {
  return xs[Math.floor(rand() * xs.length)] as T;
}

/** A tiny alphabet makes partial matches, overlaps and failure-link walks common. */
function randomString(rand: () => number, len: number, alphabet: string): string {
  let s = "";
  for (let i = 0; i < len; i++) s += alphabet[Math.floor(rand() * alphabet.length)];
  return s;
}

function randomSecrets(rand: () => number): string[] {
  const n = 1 + Math.floor(rand() * 4);
  const out: string[] = [];
  while (out.length < n) {
    const s = randomString(rand, 6 + Math.floor(rand() * 10), rand() < 0.3 ? "ab \n" : "abc");
    if (s.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "").length >= 6) out.push(s);
  }
  return out;
}

/** Text with needles planted in it, their spaces turned into random whitespace runs. */
function randomLog(rand: () => number, needles: readonly string[], extra: readonly string[] = []): string {
  let text = "";
  const len = Math.floor(rand() * 200);
  while (text.length < len) {
    const r = rand();
    if (r < 0.15 && needles.length > 0) {
      text += pick(rand, needles).replace(/ /g, () => pick(rand, [" ", "\n", "\r\n", " \t", "\n+ ", "  "]));
    } else if (r < 0.22 && extra.length > 0) {
      text += pick(rand, extra);
    } else {
      text += randomString(rand, 1 + Math.floor(rand() * 12), "abcab \n\t+x");
    }
  }
  return text;
}

describe("fuzz", () => {
  it(`streaming needle masking equals the whole-text reference (${ITERATIONS} cases)`, () => {
    const rand = prng(0xa1b10c);
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const set = new SecretSet(randomSecrets(rand).map((v, i) => [`S${i}`, v] as const));
      const needles = set.needleTexts();
      const text = randomLog(rand, needles);
      const expected = referenceMask(needles, text);
      const chunks = rand() < 0.2 ? oneByOne(text) : randomChunks(text, rand, 1 + Math.floor(rand() * 20));
      const got = feed(createMasker(set, { detectCredentials: false, addMask: false }), chunks);
      if (got !== expected) {
        // Print the case so it can be added to the corpus.
        expect({ secrets: needles, chunks, got }).toEqual({ secrets: needles, chunks, got: expected });
      }
    }
  });

  it(`the full filter does not depend on chunking and leaves no needle behind (${ITERATIONS} cases)`, () => {
    const rand = prng(0x5eed);
    const extra = [
      "::add-mask::abcabcab\n",
      "\n::add-mask::ab%0Aaaaabb\n",
      "::add-mask::ab\n",
      " ::add-mask:",
      "AKIAIOSFODNN7EXAMPLE ",
      "-----BEGIN PRIVATE KEY-----\nMIIEab\n",
      "-----END PRIVATE KEY-----",
      "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_part ",
      "\r",
    ];
    for (let iter = 0; iter < ITERATIONS; iter++) {
      const values = randomSecrets(rand);
      // Secrets that share a prefix with a credential make the automaton hold a trigger back.
      if (rand() < 0.3)
        values.push(
          `${pick(rand, ["AKIAIOSFODNN7EX", "eyJhbGciOiJIUzI1", "-----BEGIN PRIV"])}${randomString(rand, 3, "ab")}`,
        );
      const make = () => new SecretSet(values.map((v, i) => [`S${i}`, v] as const));
      const text = randomLog(rand, make().needleTexts(), extra);
      const whole = feed(createMasker(make()), [text]);
      const chunked = feed(createMasker(make()), randomChunks(text, rand, 1 + Math.floor(rand() * 16)));
      if (chunked !== whole) expect({ text, chunked }).toEqual({ text, chunked: whole });
      const single = feed(createMasker(make()), oneByOne(text));
      if (single !== whole) expect({ text, single }).toEqual({ text, single: whole });
      const leftover = referenceMask(make().needleTexts(), whole);
      if (leftover !== whole) expect({ text, whole }).toEqual({ text, whole: leftover });
    }
  });
});
