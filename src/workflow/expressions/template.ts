// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is GitHub expression syntax, not a JS template
import { isAirlockError } from "../../errors.js";
import type { Ast, StatusFunctionName } from "./ast.js";
import { usesStatusFunction } from "./ast.js";
import { expressionError } from "./errors.js";
import { type ExpressionContext, evaluate } from "./evaluate.js";
import { parseExpression } from "./parser.js";
import { toBoolean, toStr } from "./values.js";

export type TemplatePart =
  | { kind: "text"; value: string; offset: number }
  /** `source` is the text between `${{` and `}}`; `offset` is where that text starts. */
  | { kind: "expression"; source: string; offset: number };

/**
 * Splits a string into literal text and `${{ }}` expressions. The closing `}}` is searched outside
 * single-quoted strings, so `${{ format('{{0}}', x) }}` stays one expression.
 */
export function splitTemplate(template: string): TemplatePart[] {
  const parts: TemplatePart[] = [];
  let cursor = 0;
  for (;;) {
    const open = template.indexOf("${{", cursor);
    if (open < 0) break;
    if (open > cursor) parts.push({ kind: "text", value: template.slice(cursor, open), offset: cursor });
    const start = open + 3;
    let i = start;
    let inString = false;
    let close = -1;
    for (; i < template.length; i++) {
      const ch = template[i];
      if (ch === "'")
        inString = !inString; // '' toggles twice, so escapes need no special case
      else if (!inString && ch === "}" && template[i + 1] === "}") {
        close = i;
        break;
      }
    }
    if (close < 0) {
      throw expressionError(
        "'${{' is never closed with '}}'",
        open,
        template,
        "close the expression with }}",
      );
    }
    parts.push({ kind: "expression", source: template.slice(start, close), offset: start });
    cursor = close + 2;
  }
  if (cursor < template.length) parts.push({ kind: "text", value: template.slice(cursor), offset: cursor });
  return parts;
}

// Templates are re-evaluated for every job and step; parsing once per distinct source is enough.
const cache = new Map<string, Ast>();
function cachedParse(source: string): Ast {
  let ast = cache.get(source);
  if (!ast) {
    ast = parseExpression(source);
    if (cache.size >= 2048) cache.clear();
    cache.set(source, ast);
  }
  return ast;
}

/** Replaces every `${{ expr }}` in `template` with the string form of its value. */
export function interpolate(template: string, ctx: ExpressionContext): string {
  if (!template.includes("${{")) return template;
  let out = "";
  for (const part of splitTemplate(template)) {
    out += part.kind === "text" ? part.value : toStr(evaluate(cachedParse(part.source), ctx));
  }
  return out;
}

/**
 * The expression of an `if:`. GitHub lets it be written bare or wrapped in one `${{ }}`. Text
 * mixed with `${{ }}` would be a non-empty string and so always true; that is refused rather than
 * silently running the job. Returns undefined for an empty condition.
 */
export function conditionSource(ifText: string): { source: string; offset: number } | undefined {
  const trimmed = ifText.trim();
  if (trimmed === "") return undefined;
  const lead = ifText.indexOf(trimmed);
  if (!trimmed.includes("${{")) return { source: trimmed, offset: lead };
  const parts = splitTemplate(trimmed);
  const [only] = parts;
  if (parts.length === 1 && only?.kind === "expression") {
    return { source: only.source, offset: lead + only.offset };
  }
  throw expressionError(
    "condition mixes text with ${{ }}, which makes it a string that is always true",
    lead,
    ifText,
    "put the whole condition inside one ${{ }}, or drop the braces",
  );
}

/**
 * Parses an `if:` into the AST that is actually evaluated: GitHub's rule is that a condition with
 * no status function means `success() && (condition)`, and an empty condition means `success()`.
 */
export function parseCondition(
  ifText: string | undefined,
  defaultStatusCheck: StatusFunctionName = "success",
): Ast {
  const implicit: Ast = { kind: "call", name: defaultStatusCheck, args: [], offset: 0 };
  const cond = ifText === undefined ? undefined : conditionSource(ifText);
  if (!cond) return implicit;
  let ast: Ast;
  try {
    ast = cachedParse(cond.source);
  } catch (e) {
    throw shift(e, cond.offset, ifText ?? "");
  }
  if (usesStatusFunction(ast)) return ast;
  return { kind: "logical", op: "&&", left: implicit, right: ast, offset: 0 };
}

export interface ConditionOptions {
  /** The status function implied when the condition names none. GitHub's is success(). */
  defaultStatusCheck?: StatusFunctionName;
}

export function evaluateCondition(
  ifText: string | undefined,
  ctx: ExpressionContext,
  options: ConditionOptions = {},
): boolean {
  return toBoolean(evaluate(parseCondition(ifText, options.defaultStatusCheck), ctx));
}

/** Re-bases an expression error's offset from the inner source onto the enclosing text. */
function shift(e: unknown, by: number, text: string): unknown {
  if (!isAirlockError(e)) return e;
  const offset = e.details?.offset;
  const reason = e.details?.reason;
  if (typeof offset !== "number" || typeof reason !== "string") return e;
  return expressionError(reason, offset + by, text, e.hint);
}
