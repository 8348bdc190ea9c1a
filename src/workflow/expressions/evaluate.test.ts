import { describe, expect, it } from "vitest";
import { AirlockError } from "../../errors.js";
import { type ExpressionContext, evaluate } from "./evaluate.js";
import { parseExpression } from "./parser.js";
import { looseEquals, toNumber, toStr } from "./values.js";

const ctx: ExpressionContext = {
  contexts: {
    github: {
      ref: "refs/heads/main",
      event_name: "push",
      event: {
        commits: [
          { message: "first", author: { name: "Ada" } },
          { message: "second", author: { name: "Grace" } },
          { id: 3 },
        ],
        labels: { a: { name: "bug" }, b: { name: "docs" } },
      },
    },
    env: { EMPTY: "", NUM: "42", HEX: "0x10", JSON: '{"a":[1,2],"b":{"c":"deep"}}', MixedCase: "yes" },
    needs: { build: { result: "success", outputs: { version: "1.2.3" } } },
    steps: { s1: { outputs: { list: '["x","y"]' }, outcome: "success" } },
    secrets: { TOKEN: "hunter2" },
    vars: {},
  },
};

const run = (src: string, c: ExpressionContext = ctx) => evaluate(parseExpression(src), c);

describe("evaluate: equality and coercion", () => {
  it.each([
    ["null == 0", true],
    ["null == false", true],
    ["null == ''", true],
    ["null == null", true],
    ["true == 1", true],
    ["false == 0", true],
    ["true == 'true'", false],
    ["'' == 0", true],
    ["'  12 ' == 12", true],
    ["'0x10' == 16", true],
    ["'1e2' == 100", true],
    ["'abc' == 0", false],
    ["'abc' == 'ABC'", true],
    ["'abc' != 'ABC'", false],
    ["1 == 1.0", true],
    ["NaN == NaN", false],
    ["NaN != NaN", true],
    ["github.event.commits == github.event.commits", true],
    ["fromJSON('[]') == fromJSON('[]')", false],
    ["fromJSON('{}') == 0", false],
    ["fromJSON('[1]') == '[1]'", false],
    ["env.NUM == 42", true],
    ["env.missing == null", true],
    ["env.missing == ''", true],
  ])("%s → %s", (src, expected) => {
    expect(run(src)).toBe(expected);
  });
});

describe("evaluate: ordering", () => {
  it.each([
    ["1 < 2", true],
    ["2 <= 2", true],
    ["3 > 2.5", true],
    ["'10' > 9", true],
    ["'a' < 'B'", true],
    ["'B' > 'a'", true],
    ["'_' > 'a'", true],
    ["'abc' <= 'ABC'", true],
    ["null < 1", true],
    ["true > false", true],
    ["'x' < 1", false],
    ["'x' >= 1", false],
    ["NaN < 1", false],
    ["fromJSON('[]') < 1", false],
  ])("%s → %s", (src, expected) => {
    expect(run(src)).toBe(expected);
  });
});

describe("evaluate: logic", () => {
  it("&& and || return the deciding operand, not a boolean", () => {
    expect(run("env.EMPTY || 'fallback'")).toBe("fallback");
    expect(run("env.NUM || 'fallback'")).toBe("42");
    expect(run("env.NUM && 'second'")).toBe("second");
    expect(run("env.EMPTY && 'second'")).toBe("");
    expect(run("0 || null")).toBe(null);
    expect(run("github.event_name == 'push' && 'deploy' || 'skip'")).toBe("deploy");
  });

  it("short-circuits, so the right side is never evaluated", () => {
    expect(run("true || fromJSON('not json')")).toBe(true);
    expect(run("false && fromJSON('not json')")).toBe(false);
  });

  it("! gives a boolean from truthiness", () => {
    expect(run("!''")).toBe(true);
    expect(run("!0")).toBe(true);
    expect(run("!NaN")).toBe(true);
    expect(run("!null")).toBe(true);
    expect(run("!'false'")).toBe(false);
    expect(run("!fromJSON('[]')")).toBe(false);
    expect(run("!fromJSON('{}')")).toBe(false);
    expect(run("!!env.NUM")).toBe(true);
  });
});

describe("evaluate: property access", () => {
  it("reads nested values, case-insensitively", () => {
    expect(run("github.ref")).toBe("refs/heads/main");
    expect(run("GITHUB.REF")).toBe("refs/heads/main");
    expect(run("env.mixedcase")).toBe("yes");
    expect(run("needs.build.outputs.version")).toBe("1.2.3");
    expect(run("needs['build']['outputs']['version']")).toBe("1.2.3");
    expect(run("github.event.commits[1].message")).toBe("second");
    expect(run("github.event.commits['1'].message")).toBe("second");
  });

  it("gives null for anything missing or out of range", () => {
    expect(run("github.nope.deeper")).toBe(null);
    expect(run("github.event.commits[9]")).toBe(null);
    expect(run("github.event.commits[-1]")).toBe(null);
    expect(run("github.ref.length")).toBe(null);
    expect(run("runner.os")).toBe(null);
  });

  it("never reaches the prototype chain", () => {
    expect(run("github.constructor")).toBe(null);
    expect(run("github['__proto__']")).toBe(null);
    expect(run("env.toString")).toBe(null);
  });

  it("applies object filters to arrays and objects", () => {
    expect(run("github.event.commits.*.message")).toEqual(["first", "second"]);
    expect(run("github.event.commits.*.author.name")).toEqual(["Ada", "Grace"]);
    expect(run("github.event.labels.*.name")).toEqual(["bug", "docs"]);
    expect(run("github.event.commits[*].id")).toEqual([3]);
    expect(run("fromJSON('[[1,2],[3]]').*.*")).toEqual([1, 2, 3]);
    expect(run("fromJSON('[[1,2],[3]]').*[0]")).toEqual([1, 3]);
    expect(run("github.ref.*")).toEqual([]);
    expect(run("contains(github.event.commits.*.message, 'SECOND')")).toBe(true);
    expect(run("join(github.event.labels.*.name, ', ')")).toBe("bug, docs");
  });
});

describe("evaluate: functions", () => {
  it.each([
    ["contains('Hello world', 'WORLD')", true],
    ["contains('Hello', 'x')", false],
    ["contains(fromJSON('[\"a\",\"B\"]'), 'b')", true],
    ["contains(fromJSON('[1,2]'), '2')", true],
    ["contains(fromJSON('[1,2]'), 3)", false],
    ["contains(github.ref, 'main')", true],
    ["contains(12345, 34)", true],
    ["startsWith(github.ref, 'REFS/heads/')", true],
    ["startsWith('abc', 'b')", false],
    ["endsWith(github.ref, '/MAIN')", true],
    ["endsWith('abc', 'b')", false],
  ])("%s → %s", (src, expected) => {
    expect(run(src)).toBe(expected);
  });

  it("format substitutes placeholders and unescapes doubled braces", () => {
    expect(run("format('{0} and {1}', 'a', 'b')")).toBe("a and b");
    expect(run("format('{1}{0}{1}', 'x', 'y')")).toBe("yxy");
    expect(run("format('{{0}} is {0}', 7)")).toBe("{0} is 7");
    expect(run("format('{{{0}}}', 'x')")).toBe("{x}");
    expect(run("format('null={0} bool={1} num={2}', null, true, 1.50)")).toBe("null= bool=true num=1.5");
    expect(run("format('plain')")).toBe("plain");
  });

  it.each([
    ["format('{0}')", "no argument"],
    ["format('{0} {2}', 'a', 'b')", "{2} has no argument"],
    ["format('{x}', 1)", "invalid placeholder"],
    ["format('{0', 1)", "invalid placeholder"],
    ["format('a } b')", "unmatched '}'"],
  ])("format refuses %s", (src, reason) => {
    expect(() => run(src)).toThrow(reason);
  });

  it("join uses ',' by default and accepts a plain value", () => {
    expect(run("join(fromJSON('[1,\"a\",true,null]'))")).toBe("1,a,true,");
    expect(run("join(fromJSON('[\"a\",\"b\"]'), ' | ')")).toBe("a | b");
    expect(run("join('solo', '-')")).toBe("solo");
  });

  it("round-trips JSON", () => {
    expect(run("fromJSON(env.JSON).b.c")).toBe("deep");
    expect(run("fromJSON(env.JSON).a[1]")).toBe(2);
    expect(run("fromJSON('true')")).toBe(true);
    expect(run("fromJSON(steps.s1.outputs.list)[1]")).toBe("y");
    expect(run("toJSON(needs.build.outputs)")).toBe('{\n  "version": "1.2.3"\n}');
    expect(run("toJSON(null)")).toBe("null");
    expect(run("toJSON(env.missing)")).toBe("null");
  });

  it("never echoes the value in a fromJSON error (it may be a secret)", () => {
    let err: unknown;
    try {
      run("fromJSON(secrets.TOKEN)");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AirlockError);
    expect(JSON.stringify({ m: (err as Error).message, d: (err as AirlockError).details })).not.toContain(
      "hunter2",
    );
  });

  it("hashFiles needs a workspace hook", () => {
    expect(() => run("hashFiles('**/package-lock.json')")).toThrow("not available");
    const hashed = run("hashFiles('a', 'b')", { ...ctx, hashFiles: (p) => `h(${p.join("+")})` });
    expect(hashed).toBe("h(a+b)");
  });
});

describe("evaluate: status functions read the caller's status", () => {
  it.each([
    [undefined, { success: true, failure: false, cancelled: false, always: true }],
    ["success", { success: true, failure: false, cancelled: false, always: true }],
    ["failure", { success: false, failure: true, cancelled: false, always: true }],
    ["cancelled", { success: false, failure: false, cancelled: true, always: true }],
    ["skipped", { success: false, failure: false, cancelled: false, always: true }],
  ] as const)("status %s", (status, expected) => {
    const c: ExpressionContext = status === undefined ? ctx : { ...ctx, status };
    for (const [fn, value] of Object.entries(expected)) expect(run(`${fn}()`, c)).toBe(value);
  });
});

describe("value conversions", () => {
  it("converts to string the way interpolation shows values", () => {
    expect(toStr(null)).toBe("");
    expect(toStr(undefined)).toBe("");
    expect(toStr(true)).toBe("true");
    expect(toStr(-0)).toBe("0");
    expect(toStr(1.5)).toBe("1.5");
    expect(toStr([1])).toBe("Array");
    expect(toStr({ a: 1 })).toBe("Object");
  });

  it("converts to number like GitHub", () => {
    expect(toNumber("")).toBe(0);
    expect(toNumber(" 7 ")).toBe(7);
    expect(toNumber("-0x1A")).toBe(-26);
    expect(toNumber("1_000")).toBeNaN();
    expect(toNumber([])).toBeNaN();
    expect(toNumber(null)).toBe(0);
    expect(looseEquals({}, {})).toBe(false);
  });
});
