// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is GitHub expression syntax, not a JS template
import { describe, expect, it } from "vitest";
import { AirlockError } from "../../errors.js";
import type { ExpressionContext } from "./evaluate.js";
import { evaluateCondition, interpolate, parseCondition, splitTemplate } from "./template.js";

const ctx = (status?: ExpressionContext["status"]): ExpressionContext => ({
  contexts: { github: { ref: "refs/heads/main", event_name: "push" }, env: { NAME: "world", EMPTY: "" } },
  ...(status ? { status } : {}),
});

describe("splitTemplate", () => {
  it("splits text and expressions with offsets", () => {
    expect(splitTemplate("a ${{ env.X }} b")).toEqual([
      { kind: "text", value: "a ", offset: 0 },
      { kind: "expression", source: " env.X ", offset: 5 },
      { kind: "text", value: " b", offset: 14 },
    ]);
  });

  it("ignores }} inside string literals", () => {
    expect(splitTemplate("${{ format('{{0}}', 'x') }}")).toEqual([
      { kind: "expression", source: " format('{{0}}', 'x') ", offset: 3 },
    ]);
    expect(splitTemplate("${{ 'it''s }}' }}")).toEqual([
      { kind: "expression", source: " 'it''s }}' ", offset: 3 },
    ]);
  });

  it("refuses an unclosed expression", () => {
    expect(() => splitTemplate("echo ${{ env.X")).toThrow(AirlockError);
    expect(() => splitTemplate("echo ${{ env.X")).toThrow("never closed");
  });
});

describe("interpolate", () => {
  it("replaces expressions with their string forms", () => {
    const c = ctx();
    expect(interpolate("hello ${{ env.NAME }}!", c)).toBe("hello world!");
    expect(interpolate("${{ github.ref == 'refs/heads/main' }}/${{ env.missing }}/${{ 1.0 }}", c)).toBe(
      "true//1",
    );
    expect(interpolate("${{ format('{0}-{1}', env.NAME, 2) }}", c)).toBe("world-2");
    expect(interpolate("${{ github }}", c)).toBe("Object");
    expect(interpolate("no expressions, { braces } and $ signs", c)).toBe(
      "no expressions, { braces } and $ signs",
    );
    expect(interpolate("multi\n${{ env.NAME }}\nline", c)).toBe("multi\nworld\nline");
  });

  it("throws EXPRESSION_INVALID on a bad expression", () => {
    expect(() => interpolate("${{ env. }}", ctx())).toThrow(
      expect.objectContaining({ code: "EXPRESSION_INVALID" }) as unknown as Error,
    );
  });
});

describe("evaluateCondition", () => {
  it("treats an empty or missing condition as success()", () => {
    expect(evaluateCondition(undefined, ctx())).toBe(true);
    expect(evaluateCondition("", ctx())).toBe(true);
    expect(evaluateCondition("  ", ctx("failure"))).toBe(false);
    expect(evaluateCondition(undefined, ctx("skipped"))).toBe(false);
  });

  it("accepts the condition with or without ${{ }}", () => {
    expect(evaluateCondition("github.event_name == 'push'", ctx())).toBe(true);
    expect(evaluateCondition("${{ github.event_name == 'PUSH' }}", ctx())).toBe(true);
    expect(evaluateCondition("  ${{ github.event_name != 'push' }}  ", ctx())).toBe(false);
  });

  it("adds an implicit success() when no status function is named", () => {
    expect(evaluateCondition("true", ctx("failure"))).toBe(false);
    expect(evaluateCondition("github.event_name == 'push'", ctx("cancelled"))).toBe(false);
    expect(parseCondition("true")).toMatchObject({
      kind: "logical",
      op: "&&",
      left: { kind: "call", name: "success" },
      right: { kind: "literal", value: true },
    });
  });

  it("leaves conditions with a status function alone", () => {
    expect(evaluateCondition("always()", ctx("failure"))).toBe(true);
    expect(evaluateCondition("failure()", ctx("failure"))).toBe(true);
    expect(evaluateCondition("failure()", ctx("success"))).toBe(false);
    expect(evaluateCondition("cancelled()", ctx("cancelled"))).toBe(true);
    expect(evaluateCondition("!cancelled() && env.NAME == 'world'", ctx("failure"))).toBe(true);
    expect(evaluateCondition("success() || failure()", ctx("skipped"))).toBe(false);
    expect(evaluateCondition("${{ always() }}", ctx("cancelled"))).toBe(true);
  });

  it("uses a different default status check when asked", () => {
    expect(evaluateCondition("true", ctx("failure"), { defaultStatusCheck: "always" })).toBe(true);
    expect(evaluateCondition(undefined, ctx("failure"), { defaultStatusCheck: "failure" })).toBe(true);
  });

  it("uses truthiness of the final value", () => {
    expect(evaluateCondition("env.NAME", ctx())).toBe(true);
    expect(evaluateCondition("env.EMPTY", ctx())).toBe(false);
    expect(evaluateCondition("'false'", ctx())).toBe(true);
  });

  it("refuses text mixed with ${{ }}, which GitHub would treat as always true", () => {
    expect(() => evaluateCondition("${{ false }} && true", ctx())).toThrow("always true");
  });

  it("reports errors at their column in the written condition", () => {
    try {
      evaluateCondition("${{ github.ref == }}", ctx());
      expect.unreachable();
    } catch (e) {
      expect((e as AirlockError).details).toMatchObject({
        offset: 18,
        reason: "unexpected end of expression",
      });
    }
  });
});
