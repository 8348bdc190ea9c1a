/**
 * Loading: built-in policies plus every `*.cedar` file in a directory, checked for duplicate ids
 * and validated (strict) against the schema, so a typo fails at startup rather than silently
 * never matching at admission time.
 */
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { AirlockError, formatPosition } from "../errors.js";
import { DEFAULT_POLICIES_FILE, DEFAULT_POLICIES_TEXT } from "./defaults.js";
import { SCHEMA_TEXT } from "./schema.js";
import {
  cedarMessage,
  firstOffset,
  type LoadedPolicy,
  type PolicySource,
  parsePolicySource,
  positionInPolicy,
} from "./source.js";

export interface LoadedPolicies {
  /** Built-ins first, then user files in name order; each file's policies in file order. */
  readonly policies: readonly LoadedPolicy[];
  /** Validator warnings (e.g. a condition that is always false), as `file:line:col: message`. */
  readonly warnings: readonly string[];
}

/** Pure core of loadPolicies: built-ins plus the given sources, validated against the schema. */
export function compilePolicies(sources: readonly PolicySource[]): LoadedPolicies {
  const all = [{ file: DEFAULT_POLICIES_FILE, text: DEFAULT_POLICIES_TEXT }, ...sources];
  const policies = all.flatMap(parsePolicySource);

  const byId = new Map<string, LoadedPolicy>();
  for (const p of policies) {
    const prior = byId.get(p.id);
    if (prior) {
      throw new AirlockError("POLICY_INVALID", `duplicate policy id "${p.id}"`, {
        position: { file: p.file, line: p.line, col: p.col },
        hint: `already used at ${formatPosition({ file: prior.file, line: prior.line, col: prior.col })}; give each policy a unique @id`,
      });
    }
    byId.set(p.id, p);
  }

  const answer = cedar.validate({
    schema: SCHEMA_TEXT,
    policies: { staticPolicies: Object.fromEntries(policies.map((p) => [p.id, p.text])) },
    validationSettings: { mode: "strict" },
  });
  if (answer.type === "failure") {
    // Only reachable if the built-in schema itself is broken.
    throw new AirlockError("POLICY_INVALID", answer.errors.map(cedarMessage).join("; "));
  }
  const located = (e: cedar.ValidationError): string => {
    const p = byId.get(e.policyId);
    if (!p) return `${e.policyId}: ${e.error.message}`;
    const pos = positionInPolicy(p, firstOffset(e.error) ?? 0);
    return `${formatPosition(pos)}: ${e.error.message}`;
  };
  const [first] = answer.validationErrors;
  if (first) {
    const policy = byId.get(first.policyId);
    throw new AirlockError("POLICY_INVALID", first.error.message, {
      ...(policy ? { position: positionInPolicy(policy, firstOffset(first.error) ?? 0) } : {}),
      hint:
        first.error.help ??
        'policies are validated against the Airlock schema (see src/policy/README.md); scope them with action == Airlock::Action::"RunJob" to use RunJob\'s context',
      details: { errors: answer.validationErrors.map(located) },
    });
  }
  return { policies, warnings: answer.validationWarnings.map(located) };
}

/**
 * Reads every `*.cedar` file directly inside `dir` (name order, not recursive) and merges it with
 * the built-ins. Without `dir`, only the built-ins apply.
 */
export async function loadPolicies(options: { dir?: string } = {}): Promise<LoadedPolicies> {
  const { dir } = options;
  if (dir === undefined) return compilePolicies([]);
  let names: string[];
  try {
    const entries = await readdir(dir, { withFileTypes: true });
    names = entries
      .filter((e) => e.isFile() && e.name.endsWith(".cedar"))
      .map((e) => e.name)
      .sort();
  } catch (cause) {
    throw new AirlockError("POLICY_INVALID", `cannot read policy directory ${dir}`, {
      hint: "create the directory or point the policy directory setting elsewhere",
      cause,
    });
  }
  const sources = await Promise.all(
    names.map(async (name) => {
      const file = join(dir, name);
      return { file, text: await readFile(file, "utf8") };
    }),
  );
  return compilePolicies(sources);
}
