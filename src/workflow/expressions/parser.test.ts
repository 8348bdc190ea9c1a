import { describe, expect, it } from "vitest";
import { AirlockError } from "../../errors.js";
import { contextRefs, usesStatusFunction } from "./ast.js";
import { parseExpression } from "./parser.js";

function failure(src: string): AirlockError {
  try {
    parseExpression(src);
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    return e as AirlockError;
  }
  throw new Error(`expected ${src} to fail`);
}

describe("parseExpression", () => {
  it("parses literals", () => {
    expect(parseExpression("null")).toMatchObject({ kind: "literal", value: null });
    expect(parseExpression("true")).toMatchObject({ kind: "literal", value: true });
    expect(parseExpression("false")).toMatchObject({ kind: "literal", value: false });
    expect(parseExpression("42")).toMatchObject({ kind: "literal", value: 42 });
    expect(parseExpression("-9.5")).toMatchObject({ kind: "literal", value: -9.5 });
    expect(parseExpression(".5")).toMatchObject({ kind: "literal", value: 0.5 });
    expect(parseExpression("0xff")).toMatchObject({ kind: "literal", value: 255 });
    expect(parseExpression("0o17")).toMatchObject({ kind: "literal", value: 15 });
    expect(parseExpression("1.5e3")).toMatchObject({ kind: "literal", value: 1500 });
    expect(parseExpression("2E-2")).toMatchObject({ kind: "literal", value: 0.02 });
    expect(parseExpression("'it''s'")).toMatchObject({ kind: "literal", value: "it's" });
    expect(parseExpression("''")).toMatchObject({ kind: "literal", value: "" });
  });

  it("parses property access, indexing and object filters", () => {
    expect(parseExpression("github.event.pull_request.head-ref")).toMatchObject({
      kind: "member",
      property: "head-ref",
      object: { kind: "member", property: "pull_request", object: { kind: "member", property: "event" } },
    });
    expect(parseExpression("needs['build'].outputs")).toMatchObject({
      kind: "member",
      property: "outputs",
      object: { kind: "index", object: { kind: "context", name: "needs" }, index: { value: "build" } },
    });
    expect(parseExpression("github.event.commits.*.message")).toMatchObject({
      kind: "member",
      property: "message",
      object: { kind: "wildcard", object: { kind: "member", property: "commits" } },
    });
    expect(parseExpression("x[*]".replace("x", "steps"))).toMatchObject({ kind: "wildcard" });
    expect(parseExpression("fromJSON(env.J)[0].name")).toMatchObject({
      kind: "member",
      object: { kind: "index", object: { kind: "call", name: "fromJSON" } },
    });
  });

  it("matches context and function names case-insensitively", () => {
    expect(parseExpression("GitHub.ref")).toMatchObject({ object: { kind: "context", name: "github" } });
    expect(parseExpression("CONTAINS('a', 'a')")).toMatchObject({ kind: "call", name: "contains" });
    expect(parseExpression("tojson(github)")).toMatchObject({ kind: "call", name: "toJSON" });
  });

  it("follows GitHub's precedence: ! then relational, equality, &&, ||", () => {
    expect(parseExpression("a == 1 || b == 2 && c".replace(/\b([abc])\b/g, "env.$1"))).toMatchObject({
      kind: "logical",
      op: "||",
      left: { kind: "compare", op: "==" },
      right: { kind: "logical", op: "&&", left: { kind: "compare" }, right: { kind: "member" } },
    });
    expect(parseExpression("1 < 2 == true")).toMatchObject({
      kind: "compare",
      op: "==",
      left: { kind: "compare", op: "<" },
    });
    expect(parseExpression("!env.a == false")).toMatchObject({ kind: "compare", left: { kind: "not" } });
    expect(parseExpression("!(env.a == false)")).toMatchObject({ kind: "not", operand: { kind: "compare" } });
  });

  it("records offsets so errors can point into the file", () => {
    const ast = parseExpression("  secrets.TOKEN && env['X']");
    expect(contextRefs(ast)).toEqual([
      { context: "secrets", key: "TOKEN", offset: 2 },
      { context: "env", key: "X", offset: 19 },
    ]);
    expect(contextRefs(parseExpression("secrets[env.NAME]"))[0]).toMatchObject({
      context: "secrets",
      key: undefined,
    });
    expect(contextRefs(parseExpression("toJSON(secrets)"))[0]).toMatchObject({
      context: "secrets",
      key: undefined,
    });
  });

  it("detects status functions anywhere in the tree", () => {
    expect(usesStatusFunction(parseExpression("github.ref == 'x' && !cancelled()"))).toBe(true);
    expect(usesStatusFunction(parseExpression("always()"))).toBe(true);
    expect(usesStatusFunction(parseExpression("github.ref == 'x'"))).toBe(false);
  });

  it.each([
    ["", 0, "expression is empty"],
    ["github.", 7, "expected a property name after '.'"],
    ["github.ref ==", 13, "unexpected end of expression"],
    ["(true", 5, "expected ')'"],
    ["env['a'", 7, "expected ']'"],
    ["'open", 0, "unterminated string literal"],
    ['"double"', 0, "double-quoted strings are not allowed"],
    ["env.a = 'b'", 6, "'=' is not an operator"],
    ["env.a & env.b", 6, "'&' is not an operator"],
    ["env.a and env.b", 6, "unexpected identifier 'and'"],
    ["foo.bar", 0, "unknown context 'foo'"],
    ["matrix.os", 0, "unknown context 'matrix'"],
    ["true && nope()", 8, "unknown function 'nope'"],
    ["contains('a')", 0, "contains() takes 2 arguments, got 1"],
    ["success(1)", 0, "success() takes 0 arguments, got 1"],
    ["join()", 0, "join() takes 1 or 2 arguments, got 0"],
    ["1x", 0, "invalid number '1x'"],
    ["1 2", 2, "unexpected '2'"],
    ["'a'.length", 3, "unexpected '.'"],
    ["env.a #", 6, "unexpected character '#'"],
  ])("rejects %j at offset %i: %s", (src, offset, reason) => {
    const e = failure(src);
    expect(e.code).toBe("EXPRESSION_INVALID");
    expect(e.details).toMatchObject({ offset, reason: expect.stringContaining(reason) });
    expect(e.message).toContain(`column ${offset + 1}`);
  });

  it("gives hints for common mistakes", () => {
    expect(failure('"x"').hint).toContain("single quotes");
    expect(failure("a == b".replace(/\b(a|b)\b/g, "env.$1").replace("==", "=")).hint).toContain("==");
    expect(failure("githb.ref").hint).toBe('did you mean "github"?');
    expect(failure("matrix.os").hint).toContain("matrix builds are not supported");
    expect(failure("startWith(env.a, 'x')").hint).toBe('did you mean "startsWith"?');
  });

  it("bounds nesting and length", () => {
    expect(failure(`${"(".repeat(60)}true${")".repeat(60)}`).details?.reason).toContain(
      "nests deeper than 50",
    );
    expect(failure(`${"!".repeat(60)}true`).details?.reason).toContain("nests deeper than 50");
    expect(failure(`'${"a".repeat(21_001)}'`).details?.reason).toContain("longer than 21000");
    expect(parseExpression(`${"(".repeat(40)}true${")".repeat(40)}`)).toMatchObject({ kind: "literal" });
  });
});
