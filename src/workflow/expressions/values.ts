import { parseNumber } from "./lexer.js";

/**
 * GitHub's value model and coercion rules. Values are JSON-shaped: null, boolean, number, string,
 * array, object. `undefined` (a missing context) behaves as null.
 */
export type Kind = "null" | "boolean" | "number" | "string" | "array" | "object";

export function kindOf(value: unknown): Kind {
  if (value === null || value === undefined) return "null";
  switch (typeof value) {
    case "boolean":
      return "boolean";
    case "number":
      return "number";
    case "bigint":
      return "number";
    case "string":
      return "string";
    case "object":
      return Array.isArray(value) ? "array" : "object";
    default:
      return "null";
  }
}

/** Falsy: false, 0, -0, NaN, '' and null. Arrays and objects are always truthy. */
export function toBoolean(value: unknown): boolean {
  switch (kindOf(value)) {
    case "null":
      return false;
    case "boolean":
      return value as boolean;
    case "number":
      return !(Number(value) === 0 || Number.isNaN(Number(value)));
    case "string":
      return value !== "";
    default:
      return true;
  }
}

export function toNumber(value: unknown): number {
  switch (kindOf(value)) {
    case "null":
      return 0;
    case "boolean":
      return value ? 1 : 0;
    case "number":
      return Number(value);
    case "string":
      return parseNumber(value as string);
    default:
      return Number.NaN;
  }
}

/** The string form used by interpolation and by the string functions. */
export function toStr(value: unknown): string {
  switch (kindOf(value)) {
    case "null":
      return "";
    case "boolean":
      return value ? "true" : "false";
    case "number": {
      const n = Number(value);
      return Object.is(n, -0) ? "0" : String(n);
    }
    case "string":
      return value as string;
    case "array":
      return "Array";
    case "object":
      return "Object";
  }
}

/**
 * Brings two values to one kind the way GitHub does before comparing: null and booleans become
 * numbers, and a string compared with a number becomes a number. Arrays and objects never convert.
 */
function coerce(a: unknown, b: unknown): [unknown, unknown] {
  const ka = kindOf(a);
  const kb = kindOf(b);
  if (ka === kb) return [a, b];
  if (ka === "null" || ka === "boolean") return coerce(toNumber(a), b);
  if (kb === "null" || kb === "boolean") return coerce(a, toNumber(b));
  if (ka === "number" && kb === "string") return [a, toNumber(b)];
  if (ka === "string" && kb === "number") return [toNumber(a), b];
  return [a, b];
}

// .NET's OrdinalIgnoreCase folds to upper case, then compares code units; so do we.
const fold = (s: string): string => s.toUpperCase();

export function looseEquals(a: unknown, b: unknown): boolean {
  const [l, r] = coerce(a, b);
  const kind = kindOf(l);
  if (kind !== kindOf(r)) return false;
  switch (kind) {
    case "null":
      return true;
    case "number":
      return Number(l) === Number(r);
    case "string":
      return fold(l as string) === fold(r as string);
    default:
      // Booleans by value; arrays and objects only when they are the same instance.
      return l === r;
  }
}

/** `<`, `<=`, `>`, `>=`. Different kinds after coercion, arrays, objects and NaN all give false. */
export function relational(op: "<" | "<=" | ">" | ">=", a: unknown, b: unknown): boolean {
  let [l, r] = coerce(a, b);
  const kind = kindOf(l);
  if (kind !== kindOf(r)) return false;
  if (kind === "array" || kind === "object") return false;
  if (kind === "null" || kind === "boolean") {
    l = toNumber(l);
    r = toNumber(r);
  }
  let cmp: number;
  if (kind === "string") {
    const x = fold(l as string);
    const y = fold(r as string);
    cmp = x < y ? -1 : x > y ? 1 : 0;
  } else {
    const x = Number(l);
    const y = Number(r);
    if (Number.isNaN(x) || Number.isNaN(y)) return false;
    cmp = x < y ? -1 : x > y ? 1 : 0;
  }
  switch (op) {
    case "<":
      return cmp < 0;
    case "<=":
      return cmp <= 0;
    case ">":
      return cmp > 0;
    case ">=":
      return cmp >= 0;
  }
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return kindOf(value) === "object";
}

/** Case-insensitive own-property lookup (contexts and event payloads are case-insensitive). */
export function lookup(object: Record<string, unknown>, key: string): { found: boolean; value: unknown } {
  if (Object.hasOwn(object, key)) return { found: true, value: object[key] };
  const folded = fold(key);
  for (const k of Object.keys(object)) {
    if (fold(k) === folded) return { found: true, value: object[k] };
  }
  return { found: false, value: null };
}
