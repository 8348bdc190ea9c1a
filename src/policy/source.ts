/**
 * Reading Cedar policy text into individually-identified policies, with errors that point at
 * file:line:col. Pure: no file system access (load.ts does the I/O).
 */
import { basename } from "node:path";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { AirlockError, type SourcePosition } from "../errors.js";

export interface PolicySource {
  /** Shown in errors and used for fallback ids; a path or `<builtin>`. */
  file: string;
  text: string;
}

export interface LoadedPolicy {
  /** The `@id` annotation, or `<file basename>:<index>` when there is none. */
  id: string;
  effect: "permit" | "forbid";
  file: string;
  /** Where the policy itself starts (after leading comments). */
  line: number;
  col: number;
  /** The text Cedar evaluates: from just after the previous policy's `;` through this one's. */
  text: string;
  /** Where `text` starts in the file; Cedar's offsets inside `text` are relative to this. */
  textLine: number;
  textCol: number;
}

/** 1-based line and column of a JS string index (columns count UTF-16 units, as editors mostly do). */
export function lineColAtIndex(text: string, index: number): { line: number; col: number } {
  const lines = text.slice(0, Math.max(0, index)).split("\n");
  return { line: lines.length, col: (lines.at(-1)?.length ?? 0) + 1 };
}

/** Cedar reports UTF-8 byte offsets; people read lines and columns. */
export function lineColAt(text: string, byteOffset: number): { line: number; col: number } {
  const before = Buffer.from(text, "utf8").subarray(0, Math.max(0, byteOffset)).toString("utf8");
  return lineColAtIndex(before, before.length);
}

/** Maps a byte offset inside a policy's `text` to a position in its file. */
export function positionInPolicy(policy: LoadedPolicy, byteOffset: number): SourcePosition {
  const { line, col } = lineColAt(policy.text, byteOffset);
  return {
    file: policy.file,
    line: policy.textLine + line - 1,
    col: line === 1 ? policy.textCol + col - 1 : col,
  };
}

/** First source offset Cedar attached to an error, if any. */
export function firstOffset(err: cedar.DetailedError): number | undefined {
  return err.sourceLocations?.[0]?.start;
}

/** Cedar prefixes parse errors with the API it came through; users don't need that. */
export function cedarMessage(err: cedar.DetailedError): string {
  return err.message.replace(/^failed to parse polic(y|ies) from string: /, "");
}

interface Chunk {
  start: number;
  end: number;
  /** Index of the first character that is not whitespace or comment. */
  body: number;
}

/**
 * Splits a policy file at top-level `;`. Cedar's own splitter (`policySetTextToParts`) returns
 * policies sorted by generated id, which loses file order and offsets; ours keeps both. Only
 * string literals and `//` comments can hide a `;`, and Cedar has no other quoting.
 */
function splitPolicies(text: string): Chunk[] {
  const chunks: Chunk[] = [];
  let start = 0;
  let body = -1;
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (c === "/" && text[i + 1] === "/") {
      const nl = text.indexOf("\n", i);
      i = nl === -1 ? text.length : nl + 1;
      continue;
    }
    if (body === -1 && c !== undefined && !/\s/.test(c)) body = i;
    if (c === '"') {
      i++;
      while (i < text.length && text[i] !== '"') i += text[i] === "\\" ? 2 : 1;
    } else if (c === ";") {
      chunks.push({ start, end: i + 1, body: body === -1 ? start : body });
      start = i + 1;
      body = -1;
    }
    i++;
  }
  return chunks;
}

function invalid(message: string, position: SourcePosition | undefined, hint?: string): AirlockError {
  return new AirlockError("POLICY_INVALID", message, {
    ...(position ? { position } : {}),
    ...(hint ? { hint } : {}),
  });
}

const idPattern = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;

/** Parses one file's text into policies, in file order. Throws POLICY_INVALID naming file:line:col. */
export function parsePolicySource(src: PolicySource): LoadedPolicy[] {
  const parsed = cedar.checkParsePolicySet({ staticPolicies: src.text });
  if (parsed.type === "failure") {
    const first = parsed.errors[0];
    const offset = first ? firstOffset(first) : undefined;
    const position = {
      file: src.file,
      ...(offset === undefined ? { line: 1, col: 1 } : lineColAt(src.text, offset)),
    };
    throw invalid(
      first ? cedarMessage(first) : "policy file does not parse",
      position,
      first?.help ?? "see https://docs.cedarpolicy.com/policies/syntax-policy.html",
    );
  }

  const chunks = splitPolicies(src.text);
  // Our splitter and Cedar must agree on how many policies there are; if not, stop rather than
  // evaluate text that Cedar would have read differently.
  const parts = cedar.policySetTextToParts(src.text);
  const cedarCount = parts.type === "success" ? parts.policies.length + parts.policy_templates.length : -1;
  if (cedarCount !== chunks.length) {
    throw invalid(`found ${chunks.length} policies but Cedar found ${cedarCount}`, {
      file: src.file,
      line: 1,
      col: 1,
    });
  }

  return chunks.map((chunk, index) => {
    const text = src.text.slice(chunk.start, chunk.end);
    const textPos = lineColAtIndex(src.text, chunk.start);
    const bodyPos = lineColAtIndex(src.text, chunk.body);
    const at = { file: src.file, ...bodyPos };
    const json = cedar.policyToJson(text);
    if (json.type === "failure") {
      throw invalid(json.errors[0] ? cedarMessage(json.errors[0]) : "policy does not parse", at);
    }
    const annotated = json.json.annotations?.id;
    if (annotated !== undefined && (annotated === null || !idPattern.test(annotated))) {
      throw invalid(
        `@id ${JSON.stringify(annotated)} is not a valid policy id`,
        at,
        'use letters, digits and . _ : / - , e.g. @id("web-not-on-gpu")',
      );
    }
    return {
      id: annotated ?? `${basename(src.file)}:${index}`,
      effect: json.json.effect,
      file: src.file,
      line: bodyPos.line,
      col: bodyPos.col,
      text,
      textLine: textPos.line,
      textCol: textPos.col,
    };
  });
}
