import { describe, expect, it } from "vitest";
import { codeUnits } from "./code-units.js";

const expected = (s: string) => Array.from({ length: s.length }, (_, i) => s.charCodeAt(i));

describe("codeUnits", () => {
  it("gives every UTF-16 code unit of the range, lone surrogates and two-byte text included", () => {
    const text = `ab\u00e9\u20ac\ud83d\ude00 lone:\ud800 \udfff end`;
    expect(Array.from(codeUnits(text, 0, text.length).subarray(0, text.length))).toEqual(expected(text));
    expect(Array.from(codeUnits(text, 3, 9).subarray(0, 6))).toEqual(expected(text.slice(3, 9)));
  });

  it("is the same for every string representation (flat, cons, sliced)", () => {
    const long = "x".repeat(70_000);
    const cons = `${long}tail\u2603`;
    const sliced = cons.slice(69_990);
    expect(Array.from(codeUnits(sliced, 0, sliced.length).subarray(0, sliced.length))).toEqual(
      expected(sliced),
    );
  });

  it("handles text longer than the shared scratch, and the scratch still works afterwards", () => {
    const big = "ab\u00ff\u0100".repeat(40_000); // 160,000 units: beyond the 64 K-unit scratch
    const units = codeUnits(big, 0, big.length);
    expect(units.length).toBe(big.length);
    expect(units[0]).toBe(0x61);
    expect(units[big.length - 1]).toBe(0x100);
    expect(Array.from(codeUnits("ok", 0, 2).subarray(0, 2))).toEqual([0x6f, 0x6b]);
  });
});
