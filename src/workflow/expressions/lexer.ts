import { expressionError } from "./errors.js";

export type Token =
  | { kind: "number"; value: number; offset: number; text: string }
  | { kind: "string"; value: string; offset: number; text: string }
  | { kind: "ident"; value: string; offset: number; text: string }
  | { kind: "punct"; value: Punct; offset: number; text: string }
  | { kind: "eof"; offset: number; text: string };

export type Punct =
  | "."
  | "["
  | "]"
  | "("
  | ")"
  | ","
  | "*"
  | "!"
  | "=="
  | "!="
  | "<"
  | "<="
  | ">"
  | ">="
  | "&&"
  | "||";

const puncts: readonly Punct[] = [
  "==",
  "!=",
  "<=",
  ">=",
  "&&",
  "||",
  ".",
  "[",
  "]",
  "(",
  ")",
  ",",
  "*",
  "!",
  "<",
  ">",
];
const identStart = /[A-Za-z_]/;
const identRest = /[A-Za-z0-9_-]/;
// Hex, octal, then decimal with optional fraction and exponent. A sign is part of the literal
// because the language has no arithmetic, so `-` can only ever start a number.
const numberPattern = /[+-]?(?:0[xX][0-9a-fA-F]+|0[oO][0-7]+|(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)/y;

/**
 * Parses a number the way GitHub coerces strings: trimmed, empty is 0, JSON-style decimals plus
 * hex and octal; anything else is NaN.
 */
export function parseNumber(text: string): number {
  const s = text.trim();
  if (s === "") return 0;
  const sign = s.startsWith("-") ? -1 : 1;
  const body = s.replace(/^[+-]/, "");
  if (/^0x[0-9a-f]+$/i.test(body)) return sign * Number.parseInt(body.slice(2), 16);
  if (/^0o[0-7]+$/i.test(body)) return sign * Number.parseInt(body.slice(2), 8);
  if (/^(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?$/i.test(body)) return sign * Number(body);
  if (body === "Infinity") return sign * Number.POSITIVE_INFINITY;
  if (body === "NaN") return Number.NaN;
  return Number.NaN;
}

export function tokenize(src: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  // After a value (`a`, `)`, `]`, `'s'`, `*`), a `.` is member access; elsewhere it may start `.5`.
  const afterValue = (): boolean => {
    const last = tokens[tokens.length - 1];
    if (!last) return false;
    if (last.kind === "punct") return last.value === ")" || last.value === "]" || last.value === "*";
    return true;
  };
  while (i < src.length) {
    const ch = src[i] as string;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const start = i;
    if (ch === "'") {
      let value = "";
      i++;
      for (;;) {
        if (i >= src.length) throw expressionError("unterminated string literal", start, src);
        if (src[i] === "'") {
          if (src[i + 1] === "'") {
            value += "'";
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += src[i];
        i++;
      }
      tokens.push({ kind: "string", value, offset: start, text: src.slice(start, i) });
      continue;
    }
    if (ch === '"') {
      throw expressionError("double-quoted strings are not allowed", start, src, "use single quotes: 'text'");
    }
    const startsNumber =
      /[0-9+-]/.test(ch) || (ch === "." && /[0-9]/.test(src[i + 1] ?? "") && !afterValue());
    if (startsNumber) {
      numberPattern.lastIndex = i;
      const m = numberPattern.exec(src);
      if (!m) throw expressionError(`unexpected character '${ch}'`, start, src);
      i += m[0].length;
      if (i < src.length && identRest.test(src[i] as string)) {
        while (i < src.length && identRest.test(src[i] as string)) i++;
        throw expressionError(`invalid number '${src.slice(start, i)}'`, start, src);
      }
      tokens.push({ kind: "number", value: parseNumber(m[0]), offset: start, text: m[0] });
      continue;
    }
    if (identStart.test(ch)) {
      while (i < src.length && identRest.test(src[i] as string)) i++;
      const text = src.slice(start, i);
      tokens.push({ kind: "ident", value: text, offset: start, text });
      continue;
    }
    const punct = puncts.find((p) => src.startsWith(p, i));
    if (punct) {
      i += punct.length;
      tokens.push({ kind: "punct", value: punct, offset: start, text: punct });
      continue;
    }
    if (ch === "=") throw expressionError("'=' is not an operator", start, src, "compare with '=='");
    if (ch === "&" || ch === "|") {
      throw expressionError(`'${ch}' is not an operator`, start, src, `use '${ch}${ch}'`);
    }
    throw expressionError(`unexpected character '${ch}'`, start, src);
  }
  tokens.push({ kind: "eof", offset: src.length, text: "" });
  return tokens;
}
