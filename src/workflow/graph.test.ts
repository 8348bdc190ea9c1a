import { describe, expect, it } from "vitest";
import { ancestors, dependants, directDependants, findCycles, jobOrder, upstreamStatus } from "./graph.js";

const wf = (needs: Record<string, string[]>) => ({
  jobs: Object.entries(needs).map(([id, n]) => ({ id, needs: n })),
});

// a ─┬─ b ─┐
//    └─ c ─┴─ d ── e      f (alone)
const diamond = wf({ a: [], b: ["a"], c: ["a"], d: ["b", "c"], e: ["d"], f: [] });

describe("jobOrder", () => {
  it("layers jobs so each layer needs only earlier layers, keeping file order", () => {
    expect(jobOrder(diamond as never)).toEqual([["a", "f"], ["b", "c"], ["d"], ["e"]]);
  });

  it("puts independent jobs in one layer", () => {
    expect(jobOrder(wf({ x: [], y: [], z: [] }) as never)).toEqual([["x", "y", "z"]]);
  });

  it("throws on a cycle rather than looping", () => {
    expect(() => jobOrder(wf({ a: ["b"], b: ["a"] }) as never)).toThrow("cycle");
  });
});

describe("dependants and ancestors", () => {
  it("finds direct and transitive dependants in file order", () => {
    expect(directDependants(diamond as never, "a")).toEqual(["b", "c"]);
    expect(dependants(diamond as never, "a")).toEqual(["b", "c", "d", "e"]);
    expect(dependants(diamond as never, "c")).toEqual(["d", "e"]);
    expect(dependants(diamond as never, "e")).toEqual([]);
    expect(dependants(diamond as never, "f")).toEqual([]);
  });

  it("finds transitive ancestors", () => {
    expect(ancestors(diamond as never, "e")).toEqual(["a", "b", "c", "d"]);
    expect(ancestors(diamond as never, "b")).toEqual(["a"]);
    expect(ancestors(diamond as never, "a")).toEqual([]);
  });
});

describe("upstreamStatus", () => {
  it("is success when every ancestor succeeded (or there are none)", () => {
    expect(upstreamStatus(diamond as never, "a", {})).toBe("success");
    expect(upstreamStatus(diamond as never, "d", { a: "success", b: "success", c: "success" })).toBe(
      "success",
    );
  });

  it("is failure when any ancestor failed, even a non-direct one", () => {
    expect(
      upstreamStatus(diamond as never, "e", { a: "failure", b: "skipped", c: "skipped", d: "skipped" }),
    ).toBe("failure");
  });

  it("is skipped when an ancestor was skipped and none failed", () => {
    expect(upstreamStatus(diamond as never, "d", { a: "success", b: "skipped", c: "success" })).toBe(
      "skipped",
    );
  });

  it("is cancelled when the run or an ancestor was cancelled", () => {
    expect(upstreamStatus(diamond as never, "b", { a: "success" }, true)).toBe("cancelled");
    expect(upstreamStatus(diamond as never, "b", { a: "cancelled" })).toBe("cancelled");
  });
});

describe("findCycles", () => {
  const cycles = (needs: Record<string, string[]>) => findCycles(Object.keys(needs), (id) => needs[id] ?? []);

  it("finds none in a DAG", () => {
    expect(cycles({ a: [], b: ["a"], c: ["a", "b"] })).toEqual([]);
  });

  it("names the cycle starting from the earliest job", () => {
    expect(cycles({ a: ["c"], b: ["a"], c: ["b"] })).toEqual([["a", "c", "b", "a"]]);
    expect(cycles({ x: [], b: ["c"], c: ["b"] })).toEqual([["b", "c", "b"]]);
  });

  it("finds self-loops and separate cycles", () => {
    expect(cycles({ a: ["a"], b: ["c"], c: ["b"] })).toEqual([
      ["a", "a"],
      ["b", "c", "b"],
    ]);
  });

  it("ignores needs that name unknown jobs", () => {
    expect(cycles({ a: ["ghost"] })).toEqual([]);
  });
});
