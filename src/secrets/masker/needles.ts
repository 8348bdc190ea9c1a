/**
 * From one secret value to the strings the automaton looks for ("needles"): the value itself, its
 * lines, and the encodings a job is likely to print it in. Every needle is in normal form: the
 * separator characters (space, tab, CR, LF) at its ends are trimmed and each run of them inside
 * is one space. The automaton treats a run of separators in the log as one symbol (see
 * automaton.ts), so the needle "a b" matches "a b", "a\nb", "a\r\nb" and "a \t b".
 */

export const MIN_SECRET_LENGTH = 6;
/** Longest value accepted; its hex form is twice as long and the hold-back must cover it. */
export const MAX_SECRET_LENGTH = 16 * 1024;

/** The characters a log may turn a newline into; one run of them is one automaton symbol. */
export function isSeparator(code: number): boolean {
  return code === 0x20 || code === 0x09 || code === 0x0a || code === 0x0d;
}

const edges = /^[ \t\r\n]+|[ \t\r\n]+$/g;
const runs = /[ \t\r\n]+/g;

export function trimSeparators(s: string): string {
  return s.replace(edges, "");
}

export function normalizeNeedle(s: string): string {
  return trimSeparators(s).replace(runs, " ");
}

/**
 * The part of base64(prefix ‖ bytes ‖ suffix) that depends on `bytes` alone, for a prefix of
 * `offset` bytes (0, 1 or 2): characters whose six bits all fall inside `bytes`.
 */
export function base64Stable(bytes: Buffer, offset: 0 | 1 | 2): string {
  const padded = Buffer.concat([Buffer.alloc(offset), bytes]);
  const b64 = padded.toString("base64");
  const first = Math.ceil((8 * offset) / 6);
  const end = Math.floor((8 * (offset + bytes.length)) / 6);
  return b64.slice(first, end);
}

function urlForms(v: string): string[] {
  let enc: string;
  try {
    enc = encodeURIComponent(v);
  } catch {
    return []; // a lone surrogate has no UTF-8 form
  }
  // RFC 3986 strict: encodeURIComponent leaves !'()* alone, but Python's quote(safe=""), Go's
  // QueryEscape, PHP's rawurlencode and curl --data-urlencode escape them too.
  const strict = enc.replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return [
    enc,
    enc.replace(/%20/g, "+"), // application/x-www-form-urlencoded
    enc.replace(/%[0-9A-F]{2}/g, (m) => m.toLowerCase()), // encoders that emit lower-case escapes
    strict,
    strict.replace(/%20/g, "+"), // Python's quote_plus, Go's QueryEscape
  ];
}

function jsonForms(v: string): string[] {
  const plain = JSON.stringify(v).slice(1, -1);
  const u = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`;
  const ascii = plain.replace(/[\u007f-\uffff]/g, u);
  return [
    plain,
    // Encoders that escape everything outside ASCII (Python's json.dumps default) …
    ascii,
    // … some of them with upper-case hex digits (Java's, jq's \uXXXX for control characters) …
    ascii.replace(/\\u[0-9a-f]{4}/g, (m) => `\\u${m.slice(2).toUpperCase()}`),
    // … and Go's encoding/json, which also escapes <, > and & for HTML safety.
    plain.replace(/[<>&]/g, u),
  ];
}

/**
 * How shells quote a value for re-use: bash's `printf %q` (a backslash before each special
 * character, `#` and `~` at the start, `~` after `=` or `:`; ANSI-C `$'…'` once a control character
 * is in it), and the single-quoted forms of `${V@Q}` (`'\''`) and Python's shlex.quote (`'"'"'`),
 * which differ from the raw value only where the value holds a quote.
 */
function shellForms(v: string): string[] {
  const out: string[] = [];
  const isControl = (c: string) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f;
  if ([...v].some(isControl)) {
    const ansi: Record<string, string> = { "\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\", "'": "\\'" };
    out.push(
      [...v]
        .map((c) => ansi[c] ?? (isControl(c) ? `\\${c.charCodeAt(0).toString(8).padStart(3, "0")}` : c))
        .join(""),
    );
  } else {
    out.push(v.replace(/[ !"$&'()*,;<>?[\\\]^`{|}]|^[#~]|(?<=[=:])~/g, (c) => `\\${c}`));
  }
  if (v.includes("'")) out.push(v.replace(/'/g, "'\\''"), v.replace(/'/g, `'"'"'`));
  return out;
}

/**
 * `base64` (GNU, 76 columns), `openssl base64` (64) and `xxd -p` (60) wrap long output. A needle
 * holds no line break, so a wrapped encoding of a long value would pass; the wrapped form is
 * only predictable when the value starts the encoded stream (`base64 <<<"$S"`, `xxd -p key`),
 * so that alignment is spelled out. A wrap inside a longer stream is a documented limit.
 */
function wrapped(encoded: string, width: number): string | undefined {
  if (encoded.length <= width) return undefined;
  return encoded.match(new RegExp(`.{1,${width}}`, "g"))?.join("\n");
}

/** Which form of the value a needle is; kept for tests and diagnostics, never the value. */
export type NeedleVariant =
  | "raw"
  | "line"
  | "xtrace"
  | "base64"
  | "base64url"
  | "url"
  | "json"
  | "hex"
  | "shell";

export interface Needle {
  text: string;
  variant: NeedleVariant;
}

/**
 * Every needle for one value, deduplicated, in normal form, none shorter than the minimum.
 * Encodings are taken of the value as given and, if different, of the value with its edge
 * whitespace trimmed (a secret read from a file often ends in a newline that `$(cat …)` drops).
 */
export function deriveNeedles(value: string): Needle[] {
  const out = new Map<string, NeedleVariant>();
  const add = (text: string, variant: NeedleVariant) => {
    const n = normalizeNeedle(text);
    if (n.length >= MIN_SECRET_LENGTH && !out.has(n)) out.set(n, variant);
  };
  const trimmed = trimSeparators(value);
  add(trimmed, "raw");

  const lines = trimmed.split(/\r\n|\r|\n/);
  if (lines.length > 1) {
    for (const line of lines) add(line, "line");
    // `set -x` and similar tracers prefix continuation lines with PS4 ("+ ", "++ " when nested).
    // A separator run is already flexible; the "+" is not, so spell out the two common depths.
    const parts = lines.map(trimSeparators).filter((l) => l.length > 0);
    add(parts.join("\n+ "), "xtrace");
    add(parts.join("\n++ "), "xtrace");
  }

  const forms = trimmed === value ? [value] : [value, trimmed];
  for (const form of forms) {
    const bytes = Buffer.from(form, "utf8");
    for (const offset of [0, 1, 2] as const) {
      const b64 = base64Stable(bytes, offset);
      add(b64, "base64");
      add(b64.replace(/\+/g, "-").replace(/\//g, "_"), "base64url");
    }
    const b64 = base64Stable(bytes, 0);
    for (const width of [76, 64]) {
      const w = wrapped(b64, width);
      if (w) add(w, "base64");
    }
    for (const u of urlForms(form)) add(u, "url");
    for (const j of jsonForms(form)) add(j, "json");
    for (const q of shellForms(form)) add(q, "shell");
    const hex = bytes.toString("hex");
    add(hex, "hex");
    add(hex.toUpperCase(), "hex");
    const hexWrapped = wrapped(hex, 60);
    if (hexWrapped) add(hexWrapped, "hex");
    // `od -An -tx1`, `hexdump -ve '1/1 "%.2x "'`: one byte per field; its line breaks are separators.
    add(hex.replace(/(..)(?!$)/g, "$1 "), "hex");
  }
  return [...out].map(([text, variant]) => ({ text, variant }));
}
