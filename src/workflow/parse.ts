// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is GitHub expression syntax, not a JS template
/**
 * Workflow intake: YAML text → typed `Workflow`, or one AirlockError WORKFLOW_INVALID that lists
 * every problem with its file:line:col. Everything that could fail mid-run because of the file
 * (typos, unknown actions, bad expressions, undeclared secrets) fails here instead.
 */
import {
  type Document,
  isAlias,
  isMap,
  isScalar,
  isSeq,
  LineCounter,
  type Node,
  parseDocument,
  type Scalar,
} from "yaml";
import { AirlockError, isAirlockError, type SourcePosition } from "../errors.js";
import {
  type Ast,
  type ContextName,
  conditionSource,
  contextRefs,
  isStatusFunction,
  parseExpression,
  splitTemplate,
  walk,
} from "./expressions/index.js";
import { findCycles } from "./graph.js";
import { closest, didYouMean } from "./suggest.js";
import {
  type BuiltinAction,
  defaultTimeoutMinutes,
  type EgressMode,
  type EgressSpec,
  type JobSpec,
  type PermissionLevel,
  type PermissionScope,
  type Permissions,
  permissionScopes,
  type StepSpec,
  type TriggerConfig,
  type TriggerSpec,
  type Workflow,
  type WorkflowInput,
  type WorkflowInputType,
  type WorkflowProblem,
} from "./types.js";
import { duplicateKeys, indexAliases, maxAliasExpansion } from "./yaml-guards.js";

/** Larger files are refused before YAML parsing: nobody writes a 1 MiB workflow by hand. */
export const maxWorkflowBytes = 1024 * 1024;
/** GitHub's own ceiling for a run; also bounds the policy decisions and rows one intake makes. */
export const maxJobs = 256;
export const maxStepsPerJob = 1000;
/**
 * Five days, GitHub's limit for self-hosted jobs. Beyond about 24 days a Node timer overflows and
 * fires at once, so an unbounded value would not mean "forever" anyway.
 */
export const maxTimeoutMinutes = 7200;

/** With no `permissions:` anywhere, a job may read its repository and nothing else. */
export function defaultPermissions(): Permissions {
  const p = allPermissions("none");
  p.contents = "read";
  return p;
}

function allPermissions(level: PermissionLevel): Permissions {
  return Object.fromEntries(permissionScopes.map((s) => [s, level])) as Permissions;
}

/** Inputs each built-in action accepts; an input outside this list is a typo caught at intake. */
export const builtinActions: Record<
  BuiltinAction,
  { inputs: readonly string[]; required: readonly string[] }
> = {
  "actions/checkout": {
    inputs: [
      "repository",
      "ref",
      "token",
      "path",
      "clean",
      "fetch-depth",
      "fetch-tags",
      "filter",
      "sparse-checkout",
      "sparse-checkout-cone-mode",
      "lfs",
      "submodules",
      "persist-credentials",
      "show-progress",
      "set-safe-directory",
    ],
    required: [],
  },
  "actions/upload-artifact": {
    inputs: [
      "name",
      "path",
      "if-no-files-found",
      "retention-days",
      "compression-level",
      "overwrite",
      "include-hidden-files",
    ],
    required: ["path"],
  },
  "actions/download-artifact": {
    inputs: ["name", "path", "pattern", "merge-multiple"],
    required: [],
  },
};

const idPattern = /^[A-Za-z_][A-Za-z0-9_-]*$/;
/**
 * The names `airlock env set` accepts (src/repos/environments.ts). Anything else (a space, a tab,
 * a Cyrillic "о") could never match a protected environment, so it could only be a way around one.
 */
const environmentNamePattern = /^[A-Za-z0-9_.-]{1,100}$/;
/** An action's version: a tag, branch or sha, nothing a shell or a URL would read specially. */
const actionRefPattern = /^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$/;
const envNamePattern = /^[A-Za-z_][A-Za-z0-9_]*$/;
const knownShells = ["bash", "sh", "python", "pwsh"];

const topKeys = ["name", "run-name", "on", "permissions", "env", "defaults", "jobs"] as const;
const jobKeys = [
  "name",
  "runs-on",
  "needs",
  "if",
  "environment",
  "permissions",
  "env",
  "defaults",
  "outputs",
  "timeout-minutes",
  "continue-on-error",
  "steps",
  "egress",
  "secrets",
  "privileged",
  "mounts",
  "container",
] as const;
const stepKeys = [
  "id",
  "name",
  "if",
  "run",
  "shell",
  "env",
  "working-directory",
  "uses",
  "with",
  "continue-on-error",
  "timeout-minutes",
] as const;

// GitHub keys Airlock knows but refuses: naming them beats "unknown key".
const unsupportedTop: Record<string, string> = {
  concurrency: "concurrency groups are not supported",
};
const unsupportedJob: Record<string, string> = {
  strategy: "matrix builds are not supported; write one job per variant",
  services: "service containers are not supported",
  uses: "reusable workflows are not supported",
  concurrency: "concurrency groups are not supported",
};

const events = [
  "branch_protection_rule",
  "check_run",
  "check_suite",
  "create",
  "delete",
  "deployment",
  "deployment_status",
  "discussion",
  "discussion_comment",
  "fork",
  "gollum",
  "issue_comment",
  "issues",
  "label",
  "merge_group",
  "milestone",
  "page_build",
  "public",
  "pull_request",
  "pull_request_review",
  "pull_request_review_comment",
  "pull_request_target",
  "push",
  "registry_package",
  "release",
  "repository_dispatch",
  "schedule",
  "status",
  "watch",
  "workflow_dispatch",
  "workflow_run",
];

// Which filters each event takes; events not listed here take only `types`.
const eventKeys: Record<string, readonly string[]> = {
  push: ["branches", "branches-ignore", "tags", "tags-ignore", "paths", "paths-ignore"],
  pull_request: ["branches", "branches-ignore", "paths", "paths-ignore", "types"],
  pull_request_target: ["branches", "branches-ignore", "paths", "paths-ignore", "types"],
  workflow_dispatch: ["inputs"],
  workflow_run: ["workflows", "types", "branches", "branches-ignore"],
  schedule: [],
};

const camel: Record<string, keyof TriggerConfig> = {
  branches: "branches",
  "branches-ignore": "branchesIgnore",
  tags: "tags",
  "tags-ignore": "tagsIgnore",
  paths: "paths",
  "paths-ignore": "pathsIgnore",
  types: "types",
  workflows: "workflows",
};

/**
 * Which contexts each place may read. This follows GitHub's context availability table (without
 * matrix/strategy). Secrets are narrower than GitHub: only where a job has said which it wants.
 */
const scopes = {
  runName: ["github", "inputs", "vars"],
  workflowEnv: ["github", "inputs", "vars"],
  job: ["github", "needs", "vars", "inputs"],
  jobEnv: ["github", "needs", "vars", "secrets", "inputs"],
  late: ["github", "needs", "job", "runner", "env", "vars", "steps", "inputs"],
  step: ["github", "needs", "job", "runner", "env", "vars", "secrets", "steps", "inputs"],
} as const satisfies Record<string, readonly ContextName[]>;

interface Scope {
  contexts: readonly ContextName[];
  /** Step ids `steps.X` may name; undefined where steps are not readable. */
  steps?: readonly string[];
  /** Job ids `needs.X` may name. */
  needs?: readonly string[];
  /** Secret names the job declared. */
  secrets?: readonly string[];
  /** Status functions are only meaningful in `if:`. */
  condition?: boolean;
  /**
   * Set for `run:` text, which is spliced into a script before the shell reads it: values a
   * requester controls may not be spliced there. Holds the env names (upper-cased) whose values
   * carry such input.
   */
  script?: { taintedEnv: ReadonlySet<string> };
}

/**
 * `github` fields a requester or a pull request's author controls, by their first key. Airlock's
 * own `github` context validates ref and actor names at intake; these it passes on as given.
 */
const untrustedGithubKeys = new Set(["event", "head_ref"]);

interface Entry {
  key: string;
  keyNode: Node;
  value: Node | null;
}

export function parseWorkflow(text: string, file: string): Workflow {
  const intake = new Intake(text, file);
  const workflow = intake.run();
  intake.throwIfProblems();
  return workflow as Workflow;
}

class Intake {
  private readonly problems: WorkflowProblem[] = [];
  private readonly lines = new LineCounter();
  private doc: Document.Parsed | undefined;
  private aliasTargets = new Map<Node, Node | null>();
  /** Env names (upper-cased) whose value splices requester input, as seen by the job being read. */
  private taintedEnv: ReadonlySet<string> = new Set();

  constructor(
    private readonly text: string,
    private readonly file: string,
  ) {}

  // ── reporting ──────────────────────────────────────────────────────────────────────────────

  private position(offset: number): SourcePosition {
    const { line, col } = this.lines.linePos(offset);
    // Before YAML parsing (the size check) the line counter is still empty.
    return line === 0 ? { file: this.file, line: 1, col: offset + 1 } : { file: this.file, line, col };
  }

  private report(at: Node | number | null | undefined, message: string, hint?: string): void {
    const offset = typeof at === "number" ? at : (at?.range?.[0] ?? 0);
    const { line, col } = this.position(offset);
    const dup = this.problems.some((p) => p.line === line && p.col === col && p.message === message);
    if (dup) return;
    this.problems.push({ message, file: this.file, line, col, ...(hint === undefined ? {} : { hint }) });
  }

  throwIfProblems(): void {
    if (this.problems.length === 0) return;
    const problems = [...this.problems].sort((a, b) => a.line - b.line || a.col - b.col);
    const [first] = problems as [WorkflowProblem, ...WorkflowProblem[]];
    const rest = problems.slice(1).map((p) => `\n${p.file}:${p.line}:${p.col}: ${p.message}`);
    const count = problems.length === 1 ? "" : ` (1 of ${problems.length} problems)`;
    throw new AirlockError("WORKFLOW_INVALID", `${first.message}${count}${rest.join("")}`, {
      position: { file: first.file, line: first.line, col: first.col },
      hint: first.hint ?? "fix the workflow file and submit the run again",
      details: { errors: problems },
    });
  }

  // ── YAML helpers ───────────────────────────────────────────────────────────────────────────

  private deref(node: unknown): Node | null {
    if (isAlias(node)) return this.aliasTargets.get(node) ?? null;
    return (node as Node | null | undefined) ?? null;
  }

  /** A mapping's entries, or undefined (reported) when `node` is not a mapping. */
  private entries(node: Node | null, where: string, anchor?: Node | null): Entry[] | undefined {
    if (!isMap(node)) {
      this.report(node ?? anchor, `${where} must be a mapping`);
      return undefined;
    }
    const out: Entry[] = [];
    for (const pair of node.items) {
      const keyNode = this.deref(pair.key);
      if (!isScalar(keyNode) || keyNode.value === null || typeof keyNode.value === "object") {
        this.report(keyNode ?? node, `${where} has a key that is not a plain name`);
        continue;
      }
      out.push({ key: String(keyNode.value), keyNode, value: this.deref(pair.value) });
    }
    return out;
  }

  /** Reports unknown keys, naming the nearest known key when one is close. */
  private checkKeys(
    entries: Entry[],
    allowed: readonly string[],
    where: string,
    unsupported: Record<string, string> = {},
  ): Map<string, Entry> {
    const known = new Map<string, Entry>();
    for (const e of entries) {
      if (allowed.includes(e.key)) {
        known.set(e.key, e);
      } else if (Object.hasOwn(unsupported, e.key)) {
        this.report(e.keyNode, `"${e.key}" is not supported by Airlock (${where})`, unsupported[e.key]);
      } else {
        this.report(
          e.keyNode,
          `unknown key "${e.key}" in ${where}`,
          didYouMean(e.key, allowed) ?? `allowed keys: ${allowed.join(", ")}`,
        );
      }
    }
    return known;
  }

  /** The scalar's text as written, so `version: 1.10` stays "1.10" rather than becoming 1.1. */
  private scalarText(node: Scalar): string {
    if (typeof node.value === "string") return node.value;
    if (node.type === "PLAIN" && node.range) return this.text.slice(node.range[0], node.range[1]);
    return String(node.value);
  }

  private string(node: Node | null, where: string, anchor?: Node | null): string | undefined {
    if (isScalar(node) && node.value !== null && typeof node.value !== "object") {
      const s = this.scalarText(node);
      if (s.trim() === "") {
        this.report(node, `${where} must not be empty`);
        return undefined;
      }
      return s;
    }
    // An empty value has no text of its own; its key is where the reader should look.
    if (isScalar(node) && node.value === null) this.report(anchor ?? node, `${where} must not be empty`);
    else this.report(node ?? anchor, `${where} must be a string`);
    return undefined;
  }

  /** A string or a list of strings (`needs: a` or `needs: [a, b]`). */
  private stringList(
    node: Node | null,
    where: string,
    anchor?: Node | null,
  ): { value: string; node: Node }[] {
    if (isSeq(node)) {
      const out: { value: string; node: Node }[] = [];
      node.items.forEach((item, i) => {
        const n = this.deref(item);
        const s = this.string(n, `${where}[${i}]`, node);
        if (s !== undefined && n) out.push({ value: s, node: n });
      });
      return out;
    }
    const s = this.string(node, where, anchor);
    return s !== undefined && node ? [{ value: s, node }] : [];
  }

  private boolean(node: Node | null, where: string, anchor?: Node | null): boolean | undefined {
    if (isScalar(node)) {
      if (typeof node.value === "boolean") return node.value;
      if (node.value === "true" || node.value === "false") return node.value === "true";
    }
    this.report(
      node?.range ? node : anchor,
      `${where} must be true or false`,
      "Airlock needs a literal here; expressions are not evaluated for this key",
    );
    return undefined;
  }

  private positiveNumber(
    node: Node | null,
    where: string,
    anchor?: Node | null,
    max = Number.POSITIVE_INFINITY,
  ): number | undefined {
    if (isScalar(node) && typeof node.value === "number" && Number.isFinite(node.value) && node.value > 0) {
      if (node.value <= max) return node.value;
      this.report(node, `${where} must be at most ${max}`);
      return undefined;
    }
    this.report(node?.range ? node : anchor, `${where} must be a positive number`);
    return undefined;
  }

  /** env / with / outputs: names to scalar values, numbers and booleans kept as written. */
  private stringMap(
    node: Node | null,
    where: string,
    keyPattern: RegExp,
    keyRule: string,
    check: (value: string, node: Node, where: string) => void,
    anchor?: Node | null,
  ): Record<string, string> {
    const out: Record<string, string> = {};
    const entries = this.entries(node, where, anchor);
    for (const e of entries ?? []) {
      if (!keyPattern.test(e.key)) {
        this.report(e.keyNode, `${where} name "${e.key}" is invalid`, keyRule);
        continue;
      }
      const v = e.value;
      let value: string | undefined;
      if (isScalar(v) && v.value === null) value = "";
      else if (isScalar(v) && typeof v.value !== "object") value = this.scalarText(v);
      else this.report(v ?? e.keyNode, `${where}.${e.key} must be a string, number or boolean`);
      if (value !== undefined && v) {
        check(value, v, `${where}.${e.key}`);
        out[e.key] = value;
      }
    }
    return out;
  }

  // ── expressions ────────────────────────────────────────────────────────────────────────────

  /**
   * Maps an offset inside a scalar's value to an offset in the file. The value differs from the
   * source for quoted and block scalars, so the value line holding the offset is looked up in the
   * raw source; when that fails (escapes, folding) the scalar's start is the best honest answer.
   */
  private offsetIn(node: Node, value: string, index: number): number {
    const start = node.range?.[0] ?? 0;
    const end = node.range?.[1] ?? start;
    const raw = this.text.slice(start, end);
    const lineStart = value.lastIndexOf("\n", index - 1) + 1;
    const nl = value.indexOf("\n", index);
    const line = value.slice(lineStart, nl < 0 ? value.length : nl);
    if (line.trim() === "") return start;
    // The same line may repeat; use the matching occurrence.
    let nth = 0;
    for (let at = value.indexOf(line); at >= 0 && at < lineStart; at = value.indexOf(line, at + 1)) nth++;
    let found = -1;
    for (let i = 0; i <= nth; i++) {
      found = raw.indexOf(line, found + 1);
      if (found < 0) return start;
    }
    return start + found + (index - lineStart);
  }

  private expressionProblem(e: unknown, node: Node, value: string, base: number, where: string): void {
    if (!isAirlockError(e)) throw e;
    const offset = typeof e.details?.offset === "number" ? e.details.offset : 0;
    const reason = typeof e.details?.reason === "string" ? e.details.reason : e.message;
    this.report(
      this.offsetIn(node, value, base + offset),
      `invalid expression in ${where}: ${reason}`,
      e.hint,
    );
  }

  /** Parses every `${{ }}` in a string value and checks what it reads. */
  private template(value: string, node: Node, where: string, scope: Scope): void {
    if (!value.includes("${{")) return;
    let parts: ReturnType<typeof splitTemplate>;
    try {
      parts = splitTemplate(value);
    } catch (e) {
      this.expressionProblem(e, node, value, 0, where);
      return;
    }
    for (const part of parts) {
      if (part.kind !== "expression") continue;
      try {
        this.checkAst(parseExpression(part.source), node, value, part.offset, where, scope);
      } catch (e) {
        this.expressionProblem(e, node, value, part.offset, where);
      }
    }
  }

  /** Refuses `${{ }}` where Airlock needs the literal value at intake (admission decides on it). */
  private literal(value: string, node: Node, where: string, why: string): void {
    if (value.includes("${{")) {
      this.report(this.offsetIn(node, value, value.indexOf("${{")), `${where} cannot use expressions`, why);
    }
  }

  private condition(value: string, node: Node, where: string, scope: Scope): void {
    let source: { source: string; offset: number } | undefined;
    try {
      source = conditionSource(value);
    } catch (e) {
      this.expressionProblem(e, node, value, 0, where);
      return;
    }
    if (!source) return;
    try {
      this.checkAst(parseExpression(source.source), node, value, source.offset, where, {
        ...scope,
        condition: true,
      });
    } catch (e) {
      this.expressionProblem(e, node, value, source.offset, where);
    }
  }

  private checkAst(ast: Ast, node: Node, value: string, base: number, where: string, scope: Scope): void {
    const at = (offset: number) => this.offsetIn(node, value, base + offset);
    if (!scope.condition) {
      walk(ast, (n) => {
        if (n.kind === "call" && isStatusFunction(n.name)) {
          this.report(at(n.offset), `${n.name}() can only be used in if: conditions (${where})`);
        }
      });
    }
    for (const ref of contextRefs(ast)) {
      if (scope.script && isUntrusted(ref, scope.script.taintedEnv)) {
        const what = `${ref.context}${ref.key === undefined ? "" : `.${ref.key}`}`;
        this.report(
          at(ref.offset),
          `${where} splices ${what} into the script text, where a value like $(…) or "; …" would run as code`,
          `pass it through env: instead (env: { VALUE: \${{ ${what} }} }) and read "$VALUE" in the script`,
        );
      }
      if (!scope.contexts.includes(ref.context)) {
        const hint =
          ref.context === "secrets"
            ? "secrets are job-scoped: use them in a job's or step's env, with or run, and list them under the job's secrets:"
            : `available here: ${scope.contexts.join(", ")}`;
        this.report(at(ref.offset), `context '${ref.context}' is not available in ${where}`, hint);
        continue;
      }
      if (ref.context === "secrets") {
        if (ref.key === undefined) {
          this.report(
            at(ref.offset),
            `secrets must be named literally in ${where}`,
            "write secrets.NAME so intake knows which secrets the job reads",
          );
        } else if (!(scope.secrets ?? []).some((s) => s.toUpperCase() === ref.key?.toUpperCase())) {
          this.report(
            at(ref.offset),
            `secret "${ref.key}" is used in ${where} but not requested by the job`,
            `add it to the job's secrets: list (${[...(scope.secrets ?? []), ref.key].join(", ")})`,
          );
        }
      }
      if (ref.context === "steps" && ref.key !== undefined && scope.steps) {
        const lower = ref.key.toLowerCase();
        if (!scope.steps.some((s) => s.toLowerCase() === lower)) {
          this.report(
            at(ref.offset),
            `steps.${ref.key} in ${where} names no earlier step with that id`,
            didYouMean(ref.key, scope.steps) ?? "give the step an id: and refer to it after it runs",
          );
        }
      }
      if (ref.context === "needs" && ref.key !== undefined && scope.needs) {
        const lower = ref.key.toLowerCase();
        if (!scope.needs.some((s) => s.toLowerCase() === lower)) {
          this.report(
            at(ref.offset),
            `needs.${ref.key} in ${where} is not one of this job's needs`,
            didYouMean(ref.key, scope.needs) ?? `add "${ref.key}" to the job's needs:`,
          );
        }
      }
    }
  }

  // ── workflow ───────────────────────────────────────────────────────────────────────────────

  run(): Workflow | undefined {
    if (Buffer.byteLength(this.text, "utf8") > maxWorkflowBytes) {
      this.report(0, `workflow is larger than ${maxWorkflowBytes} bytes`);
      return undefined;
    }
    this.doc = parseDocument(this.text, {
      lineCounter: this.lines,
      keepSourceTokens: true,
      prettyErrors: false,
      // Checked below in linear time; the package's own check is quadratic in a mapping's size.
      uniqueKeys: false,
    });
    if (this.doc.errors.length > 0) {
      // After the first syntax error the YAML parser cascades; later errors are mostly noise.
      const [err] = this.doc.errors;
      // The parser recurses per nesting level; a hostile depth ends as a stack overflow it reports.
      const message = /call stack/i.test(err?.message ?? "") ? "the document nests too deeply" : err?.message;
      if (err) this.report(err.pos[0], `YAML: ${message?.split("\n")[0]}`, yamlHint(err.message));
      return undefined;
    }
    try {
      const [duplicate] = duplicateKeys(this.doc);
      if (duplicate) {
        this.report(duplicate, "YAML: Map keys must be unique", "remove or rename the repeated key");
        return undefined;
      }
      const aliases = indexAliases(this.doc);
      this.aliasTargets = aliases.targets;
      if (aliases.excessive) {
        this.report(
          aliases.excessive,
          `YAML aliases expand the workflow from ${aliases.written} to ${aliases.expanded} nodes (at most ${maxAliasExpansion} more are allowed)`,
          "write the repeated parts out, or share less through anchors",
        );
        return undefined;
      }
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      this.report(0, "workflow nests too deeply", "flatten the YAML structure");
      return undefined;
    }
    const root = this.deref(this.doc.contents);
    if (root === null || (isScalar(root) && root.value === null)) {
      this.report(0, "workflow is empty", "a workflow needs at least on: and jobs:");
      return undefined;
    }
    const entries = this.entries(root, "the workflow");
    if (!entries) return undefined;
    const keys = this.checkKeys(entries, topKeys, "the workflow", unsupportedTop);

    const workflow: Workflow = {
      file: this.file,
      on: {},
      permissions: defaultPermissions(),
      env: {},
      jobs: [],
    };
    const name = keys.get("name");
    if (name) {
      const s = this.string(name.value, "name", name.keyNode);
      if (s !== undefined) workflow.name = s;
    }
    const runName = keys.get("run-name");
    if (runName) {
      const s = this.string(runName.value, "run-name", runName.keyNode);
      if (s !== undefined && runName.value) {
        this.template(s, runName.value, "run-name", { contexts: scopes.runName });
        workflow.runName = s;
      }
    }
    const on = keys.get("on");
    if (on) workflow.on = this.triggers(on);
    else if (!misspelt(entries, topKeys, "on"))
      this.report(root, 'the workflow has no "on:" triggers', "add e.g. on: [push]");
    const permissions = keys.get("permissions");
    if (permissions) {
      const p = this.permissions(permissions, "permissions");
      if (p) workflow.permissions = p;
    }
    const env = keys.get("env");
    if (env) {
      workflow.env = this.env(env, "env", { contexts: scopes.workflowEnv });
      this.taintedEnv = this.taintOf(workflow.env, new Set());
    }
    const workflowTaint = this.taintedEnv;
    const defaults = keys.get("defaults") ? this.defaults(keys.get("defaults") as Entry, "defaults") : {};
    const jobs = keys.get("jobs");
    if (jobs) workflow.jobs = this.jobs(jobs, workflow, defaults, workflowTaint);
    else if (!misspelt(entries, topKeys, "jobs")) this.report(root, 'the workflow has no "jobs:"');
    return workflow;
  }

  private triggers(entry: Entry): TriggerSpec {
    const node = entry.value;
    const out: TriggerSpec = {};
    const event = (name: string, at: Node): boolean => {
      if (events.includes(name)) return true;
      if (name === "workflow_call")
        this.report(at, "workflow_call is not supported", "reusable workflows are not supported");
      else this.report(at, `unknown event "${name}" in on:`, didYouMean(name, events));
      return false;
    };
    if (isScalar(node) || isSeq(node)) {
      for (const { value, node: n } of this.stringList(node, "on", entry.keyNode)) {
        if (event(value, n)) out[value] = {};
      }
      return out;
    }
    for (const e of this.entries(node, "on", entry.keyNode) ?? []) {
      if (!event(e.key, e.keyNode)) continue;
      out[e.key] = this.trigger(e);
    }
    return out;
  }

  private trigger(e: Entry): TriggerConfig {
    const where = `on.${e.key}`;
    const config: TriggerConfig = {};
    const v = e.value;
    if (e.key === "schedule") {
      if (!isSeq(v)) {
        this.report(v?.range ? v : e.keyNode, "on.schedule must be a list of { cron: '…' }");
        return config;
      }
      config.cron = [];
      v.items.forEach((item, i) => {
        const entries = this.entries(this.deref(item), `on.schedule[${i}]`, v);
        const keys = this.checkKeys(entries ?? [], ["cron"], `on.schedule[${i}]`);
        const cron = keys.get("cron");
        if (!cron) {
          if (entries) this.report(this.deref(item), `on.schedule[${i}] needs a cron:`);
          return;
        }
        const s = this.string(cron.value, `on.schedule[${i}].cron`, cron.keyNode);
        if (s === undefined) return;
        if (s.trim().split(/\s+/).length !== 5) {
          this.report(
            cron.value,
            `on.schedule[${i}].cron must have 5 fields`,
            "minute hour day-of-month month day-of-week",
          );
        }
        config.cron?.push(s);
      });
      return config;
    }
    if (v === null || (isScalar(v) && v.value === null)) return config;
    const allowed = eventKeys[e.key] ?? ["types"];
    const keys = this.checkKeys(this.entries(v, where, e.keyNode) ?? [], allowed, where);
    for (const [key, entry] of keys) {
      if (key === "inputs") {
        config.inputs = this.inputs(entry);
        continue;
      }
      const field = camel[key];
      if (field && field !== "inputs" && field !== "cron") {
        config[field] = this.stringList(entry.value, `${where}.${key}`, entry.keyNode).map((x) => x.value);
      }
    }
    for (const base of ["branches", "tags", "paths"]) {
      const ignore = keys.get(`${base}-ignore`);
      if (keys.has(base) && ignore) {
        this.report(
          ignore.keyNode,
          `${where} cannot have both ${base} and ${base}-ignore`,
          `use ${base} with "!pattern" entries to exclude`,
        );
      }
    }
    return config;
  }

  private inputs(entry: Entry): Record<string, WorkflowInput> {
    const out: Record<string, WorkflowInput> = {};
    const types: WorkflowInputType[] = ["string", "boolean", "choice", "number", "environment"];
    for (const e of this.entries(entry.value, "on.workflow_dispatch.inputs", entry.keyNode) ?? []) {
      const where = `input "${e.key}"`;
      if (!idPattern.test(e.key)) {
        this.report(e.keyNode, `input name "${e.key}" is invalid`, "use letters, digits, - and _");
        continue;
      }
      const input: WorkflowInput = { required: false, type: "string" };
      if (e.value === null || (isScalar(e.value) && e.value.value === null)) {
        out[e.key] = input;
        continue;
      }
      const keys = this.checkKeys(
        this.entries(e.value, where, e.keyNode) ?? [],
        ["description", "required", "type", "default", "options"],
        where,
      );
      const description = keys.get("description");
      if (description) {
        const s = this.string(description.value, `${where} description`, description.keyNode);
        if (s !== undefined) input.description = s;
      }
      const required = keys.get("required");
      if (required)
        input.required = this.boolean(required.value, `${where} required`, required.keyNode) ?? false;
      const type = keys.get("type");
      if (type) {
        const s = this.string(type.value, `${where} type`, type.keyNode);
        if (s !== undefined && (types as string[]).includes(s)) input.type = s as WorkflowInputType;
        else if (s !== undefined)
          this.report(type.value, `${where} has unknown type "${s}"`, `types: ${types.join(", ")}`);
      }
      const options = keys.get("options");
      if (options)
        input.options = this.stringList(options.value, `${where} options`, options.keyNode).map(
          (o) => o.value,
        );
      if (input.type === "choice" && !input.options?.length) {
        this.report(type?.value ?? e.keyNode, `${where} is a choice but has no options`);
      }
      if (options && input.type !== "choice")
        this.report(options.keyNode, `${where} has options but is not type: choice`);
      const def = keys.get("default");
      const dv = def?.value;
      if (def && isScalar(dv) && dv.value !== null && typeof dv.value !== "object") {
        const value = dv.value as string | number | boolean;
        if (input.type === "boolean" && typeof value !== "boolean") {
          this.report(dv, `${where} default must be true or false`);
        } else if (input.type === "number" && typeof value !== "number") {
          this.report(dv, `${where} default must be a number`);
        } else if (input.type === "choice" && input.options && !input.options.includes(String(value))) {
          this.report(dv, `${where} default "${String(value)}" is not one of its options`);
        } else {
          input.default =
            typeof value === "number" || typeof value === "boolean" ? value : this.scalarText(dv);
        }
      } else if (def) {
        this.report(dv?.range ? dv : def.keyNode, `${where} default must be a string, number or boolean`);
      }
      out[e.key] = input;
    }
    return out;
  }

  private permissions(entry: Entry, where: string): Permissions | undefined {
    const v = entry.value;
    if (isScalar(v) && (v.value === "read-all" || v.value === "write-all")) {
      return allPermissions(v.value === "read-all" ? "read" : "write");
    }
    if (!isMap(v)) {
      this.report(
        v?.range ? v : entry.keyNode,
        `${where} must be read-all, write-all or a mapping of scopes`,
      );
      return undefined;
    }
    // GitHub: naming any scope sets every unnamed scope to none; `{}` is all none.
    const out = allPermissions("none");
    for (const e of this.entries(v, where) ?? []) {
      if (!(permissionScopes as readonly string[]).includes(e.key)) {
        this.report(e.keyNode, `unknown permission scope "${e.key}"`, didYouMean(e.key, permissionScopes));
        continue;
      }
      const level = isScalar(e.value) ? e.value.value : undefined;
      if (level === "read" || level === "write" || level === "none") out[e.key as PermissionScope] = level;
      else this.report(e.value ?? e.keyNode, `${where}.${e.key} must be read, write or none`);
    }
    return out;
  }

  private env(entry: Entry, where: string, scope: Scope): Record<string, string> {
    return this.stringMap(
      entry.value,
      where,
      envNamePattern,
      "environment variable names use letters, digits and _, and do not start with a digit",
      (value, node, w) => this.template(value, node, w, scope),
      entry.keyNode,
    );
  }

  private defaults(entry: Entry, where: string): { shell?: string; workingDirectory?: string } {
    const out: { shell?: string; workingDirectory?: string } = {};
    const keys = this.checkKeys(this.entries(entry.value, where, entry.keyNode) ?? [], ["run"], where);
    const run = keys.get("run");
    if (!run) return out;
    const runKeys = this.checkKeys(
      this.entries(run.value, `${where}.run`, run.keyNode) ?? [],
      ["shell", "working-directory"],
      `${where}.run`,
    );
    const shell = runKeys.get("shell");
    if (shell) {
      const s = this.shell(shell, `${where}.run.shell`);
      if (s !== undefined) out.shell = s;
    }
    const wd = runKeys.get("working-directory");
    if (wd) {
      const s = this.string(wd.value, `${where}.run.working-directory`, wd.keyNode);
      if (s !== undefined && wd.value) {
        this.literal(
          s,
          wd.value,
          `${where}.run.working-directory`,
          "defaults are applied before any context exists",
        );
        out.workingDirectory = s;
      }
    }
    return out;
  }

  private shell(entry: Entry, where: string): string | undefined {
    const s = this.string(entry.value, where, entry.keyNode);
    if (s === undefined) return undefined;
    if (!knownShells.includes(s) && !s.includes("{0}")) {
      this.report(
        entry.value,
        `unknown shell "${s}" in ${where}`,
        `use ${knownShells.join(", ")}, or a command with {0}`,
      );
      return undefined;
    }
    return s;
  }

  // ── jobs ───────────────────────────────────────────────────────────────────────────────────

  private jobs(
    entry: Entry,
    workflow: Workflow,
    defaults: { shell?: string; workingDirectory?: string },
    workflowTaint: ReadonlySet<string>,
  ): JobSpec[] {
    const entries = this.entries(entry.value, "jobs", entry.keyNode);
    if (!entries) return [];
    if (entries.length === 0) {
      this.report(entry.value?.range ? entry.value : entry.keyNode, "jobs is empty", "add at least one job");
      return [];
    }
    if (entries.length > maxJobs) {
      this.report(
        entries[maxJobs]?.keyNode,
        `the workflow has ${entries.length} jobs; at most ${maxJobs} are allowed`,
        "split it into several workflows",
      );
      return [];
    }
    const ids = entries.map((e) => e.key);
    const needsNodes = new Map<string, Node>();
    const jobs: JobSpec[] = [];
    for (const e of entries) {
      if (!idPattern.test(e.key)) {
        this.report(
          e.keyNode,
          `job id "${e.key}" is invalid`,
          "job ids start with a letter or _ and contain only letters, digits, - and _",
        );
        continue;
      }
      this.taintedEnv = workflowTaint;
      const job = this.job(e, ids, workflow, defaults, needsNodes);
      if (job) jobs.push(job);
    }
    const byId = new Map(jobs.map((j) => [j.id, j]));
    for (const cycle of findCycles(
      jobs.map((j) => j.id),
      (id) => byId.get(id)?.needs ?? [],
    )) {
      const at = needsNodes.get(cycle[0] as string);
      const message =
        cycle.length === 2 ? `job "${cycle[0]}" needs itself` : `needs cycle: ${cycle.join(" → ")}`;
      this.report(at, message, "remove one of the needs so the jobs can run in order");
    }
    return jobs;
  }

  private job(
    e: Entry,
    ids: string[],
    workflow: Workflow,
    wfDefaults: { shell?: string; workingDirectory?: string },
    needsNodes: Map<string, Node>,
  ): JobSpec | undefined {
    const id = e.key;
    const where = `job "${id}"`;
    const path = `jobs.${id}`;
    const entries = this.entries(e.value, where, e.keyNode);
    if (!entries) return undefined;
    const keys = this.checkKeys(entries, jobKeys, where, unsupportedJob);
    const job: JobSpec = {
      id,
      runsOn: [],
      needs: [],
      permissions: { ...workflow.permissions },
      env: {},
      outputs: {},
      timeoutMinutes: defaultTimeoutMinutes,
      steps: [],
      secrets: [],
      privileged: false,
      hostMounts: [],
      position: this.position(e.keyNode.range?.[0] ?? 0),
    };

    // needs and secrets first: the expression checks of every other key depend on them.
    const needs = keys.get("needs");
    if (needs) {
      if (needs.value) needsNodes.set(id, needs.value);
      for (const { value, node } of this.stringList(needs.value, `${path}.needs`, needs.keyNode)) {
        if (!ids.includes(value)) {
          this.report(
            node,
            `${path}.needs names unknown job "${value}"`,
            didYouMean(value, ids) ?? `jobs are: ${ids.join(", ")}`,
          );
        } else if (!job.needs.includes(value)) {
          job.needs.push(value);
        }
      }
    }
    const secrets = keys.get("secrets");
    if (secrets) job.secrets = this.secretNames(secrets, `${path}.secrets`);

    const jobScope: Scope = { contexts: scopes.job, needs: job.needs };
    const name = keys.get("name");
    if (name) {
      const s = this.string(name.value, `${path}.name`, name.keyNode);
      if (s !== undefined && name.value) {
        this.template(s, name.value, `${path}.name`, jobScope);
        job.name = s;
      }
    }
    // A typo like `run-on:` is already reported as unknown; "missing runs-on" would be noise.
    const runsOn = keys.get("runs-on");
    if (runsOn) job.runsOn = this.runsOn(runsOn, `${path}.runs-on`);
    else if (!misspelt(entries, jobKeys, "runs-on"))
      this.report(
        e.keyNode,
        `${where} is missing "runs-on"`,
        "add runs-on: with the runner pool label, e.g. runs-on: airlock",
      );
    const cond = keys.get("if");
    if (cond) {
      const s = this.conditionText(cond, `${path}.if`);
      if (s !== undefined && cond.value) {
        this.condition(s, cond.value, `${path}.if`, jobScope);
        job.if = s;
      }
    }
    const environment = keys.get("environment");
    if (environment) {
      const env = this.environment(environment, path, job);
      if (env) job.environment = env;
    }
    const permissions = keys.get("permissions");
    if (permissions) {
      const p = this.permissions(permissions, `${path}.permissions`);
      if (p) job.permissions = p;
    }
    const env = keys.get("env");
    if (env) {
      job.env = this.env(env, `${path}.env`, { ...jobScope, contexts: scopes.jobEnv, secrets: job.secrets });
      this.taintedEnv = this.taintOf(job.env, this.taintedEnv);
    }
    const timeout = keys.get("timeout-minutes");
    if (timeout) {
      const n = this.positiveNumber(
        timeout.value,
        `${path}.timeout-minutes`,
        timeout.keyNode,
        maxTimeoutMinutes,
      );
      if (n !== undefined) job.timeoutMinutes = n;
    }
    const coe = keys.get("continue-on-error");
    if (coe) {
      const b = this.boolean(coe.value, `${path}.continue-on-error`, coe.keyNode);
      if (b !== undefined) job.continueOnError = b;
    }
    const egress = keys.get("egress");
    if (egress) {
      const spec = this.egress(egress, `${path}.egress`);
      if (spec) job.egress = spec;
    }
    const privileged = keys.get("privileged");
    if (privileged)
      job.privileged = this.boolean(privileged.value, `${path}.privileged`, privileged.keyNode) ?? false;
    const mounts = keys.get("mounts");
    if (mounts)
      job.hostMounts.push(
        ...this.stringList(mounts.value, `${path}.mounts`, mounts.keyNode).map((m) => m.value),
      );
    const container = keys.get("container");
    if (container) this.container(container, `${path}.container`, job);

    const defaults = keys.get("defaults")
      ? this.defaults(keys.get("defaults") as Entry, `${path}.defaults`)
      : {};
    const steps = keys.get("steps");
    if (steps) {
      job.steps = this.steps(steps, path, job, {
        shell: defaults.shell ?? wfDefaults.shell,
        workingDirectory: defaults.workingDirectory ?? wfDefaults.workingDirectory,
      });
    } else if (!misspelt(entries, jobKeys, "steps")) {
      this.report(
        e.keyNode,
        `${where} is missing "steps"`,
        "add steps: with at least one run: or uses: step",
      );
    }
    const outputs = keys.get("outputs");
    if (outputs) {
      const stepIds = job.steps.flatMap((s) => (s.id ? [s.id] : []));
      job.outputs = this.stringMap(
        outputs.value,
        `${path}.outputs`,
        idPattern,
        "output names start with a letter or _ and contain only letters, digits, - and _",
        (value, node, w) =>
          this.template(value, node, w, {
            contexts: scopes.step,
            needs: job.needs,
            steps: stepIds,
            secrets: job.secrets,
          }),
        outputs.keyNode,
      );
    }
    return job;
  }

  /** `if:` may be a YAML boolean or number; it is kept as the text GitHub would see. */
  private conditionText(entry: Entry, where: string): string | undefined {
    const v = entry.value;
    if (isScalar(v) && (typeof v.value === "boolean" || typeof v.value === "number"))
      return this.scalarText(v);
    return this.string(v, where, entry.keyNode);
  }

  private runsOn(entry: Entry, where: string): string[] {
    let node = entry.value;
    let at = where;
    if (isMap(node)) {
      const keys = this.checkKeys(this.entries(node, where) ?? [], ["labels"], where, {
        group: "runner groups are not supported; use labels",
      });
      const labels = keys.get("labels");
      if (!labels) {
        this.report(node, `${where} needs labels:`);
        return [];
      }
      node = labels.value;
      at = `${where}.labels`;
    }
    const labels = this.stringList(node, at, entry.keyNode);
    for (const l of labels) {
      this.literal(l.value, l.node, at, "admission picks the runner pool before the run starts");
    }
    if (isSeq(node) && labels.length === 0 && node.items.length === 0) this.report(node, `${at} is empty`);
    return labels.map((l) => l.value);
  }

  private environment(entry: Entry, path: string, job: JobSpec): JobSpec["environment"] {
    const where = `${path}.environment`;
    const literalWhy = "admission decides on the environment before the run starts";
    const v = entry.value;
    if (isScalar(v)) {
      const name = this.string(v, where, entry.keyNode);
      if (name === undefined) return undefined;
      this.literal(name, v, where, literalWhy);
      if (!this.environmentName(name, v, where)) return undefined;
      return { name };
    }
    const keys = this.checkKeys(this.entries(v, where, entry.keyNode) ?? [], ["name", "url"], where);
    const nameEntry = keys.get("name");
    if (!nameEntry) {
      this.report(v ?? entry.keyNode, `${where} needs a name:`);
      return undefined;
    }
    const name = this.string(nameEntry.value, `${where}.name`, nameEntry.keyNode);
    if (name === undefined || !nameEntry.value) return undefined;
    this.literal(name, nameEntry.value, `${where}.name`, literalWhy);
    if (!this.environmentName(name, nameEntry.value, `${where}.name`)) return undefined;
    const out: { name: string; url?: string } = { name };
    const urlEntry = keys.get("url");
    if (urlEntry) {
      const url = this.string(urlEntry.value, `${where}.url`, urlEntry.keyNode);
      if (url !== undefined && urlEntry.value) {
        // The url is evaluated when the job ends, so it may read its steps' outputs.
        this.template(url, urlEntry.value, `${where}.url`, {
          contexts: scopes.late,
          needs: job.needs,
          steps: undefined,
        });
        out.url = url;
      }
    }
    return out;
  }

  private environmentName(name: string, node: Node, where: string): boolean {
    if (name.includes("${{") || environmentNamePattern.test(name)) return true;
    this.report(
      node,
      `${where} "${name}" is not a valid environment name`,
      'environment names are 1-100 ASCII letters, digits, ".", "_" and "-", as `airlock env set` takes them',
    );
    return false;
  }

  /**
   * Which env names carry requester input after `env` is applied over `inherited`: a value that
   * splices such input taints its name, and a clean redefinition clears it.
   */
  private taintOf(env: Record<string, string>, inherited: ReadonlySet<string>): ReadonlySet<string> {
    const out = new Set(inherited);
    for (const [name, value] of Object.entries(env)) {
      if (spliceUntrusted(value, inherited)) out.add(name.toUpperCase());
      else out.delete(name.toUpperCase());
    }
    return out;
  }

  private secretNames(entry: Entry, where: string): string[] {
    const out: string[] = [];
    for (const { value, node } of this.stringList(entry.value, where, entry.keyNode)) {
      if (!envNamePattern.test(value)) {
        this.report(node, `secret name "${value}" is invalid`, "secret names use letters, digits and _");
      } else if (out.some((s) => s.toUpperCase() === value.toUpperCase())) {
        this.report(node, `secret "${value}" is listed twice in ${where}`);
      } else {
        out.push(value);
      }
    }
    return out;
  }

  private egress(entry: Entry, where: string): EgressSpec | undefined {
    const modes: EgressMode[] = ["enforce", "audit", "block"];
    const mode = (node: Node | null, at: string, anchor: Node): EgressMode | undefined => {
      const s = this.string(node, at, anchor);
      if (s === undefined) return undefined;
      if ((modes as string[]).includes(s)) return s as EgressMode;
      this.report(node, `${at} "${s}" is not a mode`, didYouMean(s, modes) ?? `modes: ${modes.join(", ")}`);
      return undefined;
    };
    const v = entry.value;
    if (isScalar(v)) {
      const m = mode(v, where, entry.keyNode);
      return m ? { mode: m, allow: [] } : undefined;
    }
    const keys = this.checkKeys(this.entries(v, where, entry.keyNode) ?? [], ["mode", "allow"], where);
    const spec: EgressSpec = { mode: "enforce", allow: [] };
    const modeEntry = keys.get("mode");
    if (modeEntry) {
      const m = mode(modeEntry.value, `${where}.mode`, modeEntry.keyNode);
      if (!m) return undefined;
      spec.mode = m;
    }
    const allow = keys.get("allow");
    if (allow) {
      for (const { value, node } of this.stringList(allow.value, `${where}.allow`, allow.keyNode)) {
        const pattern = egressPattern(value);
        if (typeof pattern === "string") spec.allow.push(pattern);
        else
          this.report(
            node,
            `${where}.allow entry "${value}" is invalid: ${pattern.problem}`,
            "write host[:port], e.g. registry.npmjs.org:443 or *.github.com",
          );
      }
      if (spec.mode === "block" && spec.allow.length > 0) {
        this.report(
          allow.keyNode,
          `${where} is mode block but lists hosts to allow`,
          "use mode: enforce to allow only these hosts",
        );
      }
    }
    return spec;
  }

  /**
   * GitHub's `container:` is not run; it is read only so that `--privileged` and volumes reach
   * policy as what they are (privilege and host mounts), instead of being silently dropped.
   */
  private container(entry: Entry, where: string, job: JobSpec): void {
    const refuse = (at: Node | null | undefined) =>
      this.report(
        at ?? entry.keyNode,
        `containers are not supported (${where})`,
        "jobs run in Airlock's sandbox; remove container:",
      );
    const v = entry.value;
    if (!isMap(v)) {
      refuse(v?.range ? v : entry.keyNode);
      return;
    }
    let asks = false;
    const reported = this.problems.length;
    for (const e of this.entries(v, where) ?? []) {
      if (e.key === "options") {
        const s = this.string(e.value, `${where}.options`, e.keyNode);
        for (const option of s?.split(/\s+/).filter(Boolean) ?? []) {
          if (option === "--privileged" || option === "--privileged=true") {
            job.privileged = true;
            asks = true;
          } else
            this.report(
              e.value,
              `container option "${option}" is not supported (${where})`,
              "only --privileged is recognised, for policy to refuse",
            );
        }
      } else if (e.key === "volumes") {
        for (const { value } of this.stringList(e.value, `${where}.volumes`, e.keyNode)) {
          job.hostMounts.push(value.split(":")[0] || value);
          asks = true;
        }
      } else {
        refuse(e.keyNode);
      }
    }
    // A container that asks for nothing policy can weigh is still a container Airlock will not
    // run: say so rather than run the job as if the key were not there.
    if (!asks && this.problems.length === reported) refuse(v);
  }

  // ── steps ──────────────────────────────────────────────────────────────────────────────────

  private steps(
    entry: Entry,
    path: string,
    job: JobSpec,
    defaults: { shell?: string | undefined; workingDirectory?: string | undefined },
  ): StepSpec[] {
    const v = entry.value;
    if (!isSeq(v)) {
      this.report(v?.range ? v : entry.keyNode, `${path}.steps must be a list`);
      return [];
    }
    if (v.items.length === 0) {
      this.report(
        v.range ? v : entry.keyNode,
        `${path}.steps is empty`,
        "add at least one run: or uses: step",
      );
      return [];
    }
    if (v.items.length > maxStepsPerJob) {
      this.report(
        this.deref(v.items[maxStepsPerJob]) ?? v,
        `${path}.steps has ${v.items.length} steps; at most ${maxStepsPerJob} are allowed`,
        "split the job, or move the steps into a script",
      );
      return [];
    }
    const steps: StepSpec[] = [];
    const seenIds = new Map<string, Node>();
    v.items.forEach((item, index) => {
      const node = this.deref(item);
      const step = this.step(node, index, path, job, defaults, seenIds, v);
      if (step) steps.push(step);
    });
    return steps;
  }

  private step(
    node: Node | null,
    index: number,
    path: string,
    job: JobSpec,
    defaults: { shell?: string | undefined; workingDirectory?: string | undefined },
    seenIds: Map<string, Node>,
    list: Node,
  ): StepSpec | undefined {
    const where = `${path}.steps[${index}]`;
    const entries = this.entries(node, where, list);
    if (!entries || !node) return undefined;
    const keys = this.checkKeys(entries, stepKeys, `step ${index + 1} of job "${job.id}"`);
    const scope: Scope = {
      contexts: scopes.step,
      needs: job.needs,
      steps: [...seenIds.keys()],
      secrets: job.secrets,
    };
    const step: StepSpec = {
      index,
      env: {},
      with: {},
      continueOnError: false,
      position: this.position(node.range?.[0] ?? 0),
    };
    const str = (key: string): { value: string; node: Node } | undefined => {
      const e = keys.get(key);
      if (!e) return undefined;
      const s = this.string(e.value, `${where}.${key}`, e.keyNode);
      return s !== undefined && e.value ? { value: s, node: e.value } : undefined;
    };

    const id = str("id");
    if (id) {
      const prior = [...seenIds].find(([k]) => k.toLowerCase() === id.value.toLowerCase());
      if (!idPattern.test(id.value)) {
        this.report(
          id.node,
          `step id "${id.value}" is invalid`,
          "step ids start with a letter or _ and contain only letters, digits, - and _",
        );
      } else if (prior) {
        const { line, col } = this.position(prior[1].range?.[0] ?? 0);
        this.report(
          id.node,
          `step id "${id.value}" is already used in job "${job.id}" at ${line}:${col}`,
          "step ids must be unique within a job",
        );
      } else {
        step.id = id.value;
      }
    }
    const name = str("name");
    if (name) {
      this.template(name.value, name.node, `${where}.name`, scope);
      step.name = name.value;
    }
    const cond = keys.get("if");
    if (cond) {
      const s = this.conditionText(cond, `${where}.if`);
      if (s !== undefined && cond.value) {
        this.condition(s, cond.value, `${where}.if`, { ...scope, contexts: scopes.late });
        step.if = s;
      }
    }
    const env = keys.get("env");
    if (env) step.env = this.env(env, `${where}.env`, scope);
    const taintedEnv = this.taintOf(step.env, this.taintedEnv);
    const coe = keys.get("continue-on-error");
    if (coe)
      step.continueOnError = this.boolean(coe.value, `${where}.continue-on-error`, coe.keyNode) ?? false;
    const timeout = keys.get("timeout-minutes");
    if (timeout) {
      const n = this.positiveNumber(
        timeout.value,
        `${where}.timeout-minutes`,
        timeout.keyNode,
        maxTimeoutMinutes,
      );
      if (n !== undefined) step.timeoutMinutes = n;
    }

    const run = keys.get("run");
    const uses = keys.get("uses");
    if (run && uses) {
      this.report(uses.keyNode, `${where} has both run: and uses:`, "split it into two steps");
    } else if (!run && !uses && !misspelt(entries, stepKeys, "run") && !misspelt(entries, stepKeys, "uses")) {
      this.report(
        node,
        `${where} has neither run: nor uses:`,
        "a step runs a script (run:) or a built-in action (uses:)",
      );
    }
    if (run) {
      const s = str("run");
      if (s) {
        this.template(s.value, s.node, `${where}.run`, { ...scope, script: { taintedEnv } });
        step.run = s.value;
      }
      const shell = keys.get("shell");
      const sh = shell ? this.shell(shell, `${where}.shell`) : defaults.shell;
      if (sh !== undefined) step.shell = sh;
      const wd = str("working-directory");
      if (wd) this.template(wd.value, wd.node, `${where}.working-directory`, scope);
      const dir = wd?.value ?? defaults.workingDirectory;
      if (dir !== undefined) step.workingDirectory = dir;
      const w = keys.get("with");
      if (w) this.report(w.keyNode, `${where} is a run: step; with: is only for uses: steps`);
    } else {
      for (const key of ["shell", "working-directory"]) {
        const e = keys.get(key);
        if (e) this.report(e.keyNode, `${where} is a uses: step; ${key}: is only for run: steps`);
      }
    }
    if (uses && !run) {
      const s = str("uses");
      const action = s ? this.action(s.value, s.node, where) : undefined;
      if (action) {
        step.uses = action;
        const w = keys.get("with");
        const spec = builtinActions[action.action];
        if (w) {
          step.with = this.stringMap(
            w.value,
            `${where}.with`,
            /^[A-Za-z_][A-Za-z0-9_-]*$/,
            "input names use letters, digits, - and _",
            (value, n, at) => this.template(value, n, at, scope),
            w.keyNode,
          );
          for (const e of this.entries(w.value, `${where}.with`) ?? []) {
            if (!spec.inputs.includes(e.key)) {
              this.report(
                e.keyNode,
                `${action.action} has no input "${e.key}"`,
                didYouMean(e.key, spec.inputs) ?? `inputs: ${spec.inputs.join(", ")}`,
              );
            }
          }
        }
        for (const required of spec.required) {
          if (!Object.hasOwn(step.with, required)) {
            this.report(w?.keyNode ?? s?.node, `${action.action} needs with.${required}`);
          }
        }
      }
    }
    if (step.id && id) seenIds.set(step.id, id.node);
    return step;
  }

  /** Only the three built-in actions run; anything else is refused here, never mid-run. */
  private action(value: string, node: Node, where: string): StepSpec["uses"] {
    const builtins = Object.keys(builtinActions) as BuiltinAction[];
    const hint = `Airlock runs only ${builtins.join(", ")}; replace other actions with run: steps`;
    if (value.startsWith("./") || value.startsWith("docker://")) {
      this.report(node, `${where} uses "${value}": local and docker actions are not supported`, hint);
      return undefined;
    }
    const m = /^([^@\s]+)@([^@\s]+)$/.exec(value.trim());
    const name = (m?.[1] ?? value.trim()).toLowerCase();
    const builtin = builtins.find((b) => b === name);
    if (!builtin) {
      const near = closest(name, builtins);
      this.report(
        node,
        `${where} uses "${value}", which is not a built-in action`,
        near ? `did you mean "${near}"? ${hint}` : hint,
      );
      return undefined;
    }
    if (!m) {
      this.report(node, `${where} uses "${value}" without a version`, `write ${builtin}@v4`);
      return undefined;
    }
    if (!actionRefPattern.test(m[2] as string)) {
      this.report(
        node,
        `${where} uses "${value}", whose version is not a tag, branch or sha`,
        `write ${builtin}@v4`,
      );
      return undefined;
    }
    return { action: builtin, ref: m[2] as string };
  }
}

/**
 * Normalises an egress allow entry: `host[:port]`, host lower-cased, a leading `*.` for any
 * subdomain. A bare `*` is refused on purpose: allowing everything is what `audit` mode is for.
 */
export function egressPattern(entry: string): string | { problem: string } {
  const m = /^([^:]+)(?::(\d+))?$/.exec(entry.trim().toLowerCase());
  if (!m) return { problem: "expected host or host:port" };
  const host = m[1] as string;
  const port = m[2];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535))
    return { problem: "port must be 1-65535" };
  const label = "[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?";
  const hostname = new RegExp(`^(?:\\*\\.)?${label}(?:\\.${label})*$`);
  const ipv4 = /^(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)$/;
  if (host === "*") return { problem: "a bare * allows everything" };
  if (!hostname.test(host) && !ipv4.test(host)) {
    return { problem: host.includes("*") ? "* is only allowed as a leading *." : "not a host name" };
  }
  return port === undefined ? host : `${host}:${port}`;
}

function yamlHint(message: string): string {
  // `key: ${{ x }}` inside a flow mapping reads `{` as YAML; GitHub workflows hit this often.
  if (/flow-map|flow map/i.test(message)) return "quote values that contain ${{ }} or braces";
  return "check indentation and quoting near here";
}

/**
 * Whether a reference reads a value the requester or a pull request's author chooses: inputs,
 * untrusted `github` fields, the whole `github`/`env` object, or an env name carrying either.
 */
function isUntrusted(
  ref: { context: ContextName; key: string | undefined },
  taintedEnv: ReadonlySet<string>,
): boolean {
  if (ref.context === "inputs") return true;
  if (ref.context === "github")
    return ref.key === undefined || untrustedGithubKeys.has(ref.key.toLowerCase());
  if (ref.context === "env")
    return ref.key === undefined ? taintedEnv.size > 0 : taintedEnv.has(ref.key.toUpperCase());
  return false;
}

/** Whether a template's expressions read untrusted values; unparseable ones are reported elsewhere. */
function spliceUntrusted(value: string, taintedEnv: ReadonlySet<string>): boolean {
  if (!value.includes("${{")) return false;
  try {
    return splitTemplate(value).some(
      (part) =>
        part.kind === "expression" &&
        contextRefs(parseExpression(part.source)).some((ref) => isUntrusted(ref, taintedEnv)),
    );
  } catch {
    return false;
  }
}

/** True when an unknown key in `entries` looks like a typo of `key` (already reported as such). */
function misspelt(entries: readonly { key: string }[], allowed: readonly string[], key: string): boolean {
  return entries.some((e) => !allowed.includes(e.key) && closest(e.key, allowed) === key);
}
