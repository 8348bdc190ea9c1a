import type { Ast, ContextName, StatusFunctionName } from "./ast.js";
import { evaluationError } from "./errors.js";
import { isObject, lookup, looseEquals, relational, toBoolean, toNumber, toStr } from "./values.js";

/**
 * What success()/failure()/cancelled() see. For a step: the job's status so far. For a job: the
 * combined result of its needs; "skipped" means an upstream job was skipped, so neither
 * success() nor failure() holds (GitHub skips such dependants unless they ask for always()).
 */
export type ExecutionStatus = "success" | "failure" | "cancelled" | "skipped";

export interface ExpressionContext {
  contexts: Partial<Record<ContextName, unknown>>;
  /** Defaults to "success". */
  status?: ExecutionStatus;
  /** hashFiles() needs the workspace; callers that have one supply it. */
  hashFiles?: (patterns: string[]) => string;
}

// Results of an object filter (`a.*`). Later dereferences map over them instead of indexing.
const filtered = new WeakSet<unknown[]>();

function filteredArray(items: unknown[]): unknown[] {
  filtered.add(items);
  return items;
}

export function evaluate(ast: Ast, ctx: ExpressionContext): unknown {
  switch (ast.kind) {
    case "literal":
      return ast.value;
    case "context":
      return ctx.contexts[ast.name] ?? null;
    case "member":
      return dereference(evaluate(ast.object, ctx), ast.property);
    case "index": {
      const object = evaluate(ast.object, ctx);
      return dereference(object, evaluate(ast.index, ctx));
    }
    case "wildcard":
      return wildcard(evaluate(ast.object, ctx));
    case "not":
      return !toBoolean(evaluate(ast.operand, ctx));
    case "compare": {
      const left = evaluate(ast.left, ctx);
      const right = evaluate(ast.right, ctx);
      if (ast.op === "==") return looseEquals(left, right);
      if (ast.op === "!=") return !looseEquals(left, right);
      return relational(ast.op, left, right);
    }
    case "logical": {
      // Short-circuit and return the deciding operand itself, as GitHub does (`a || 'default'`).
      const left = evaluate(ast.left, ctx);
      if (ast.op === "&&") return toBoolean(left) ? evaluate(ast.right, ctx) : left;
      return toBoolean(left) ? left : evaluate(ast.right, ctx);
    }
    case "call":
      return call(ast.name, ast.args, ctx);
  }
}

function access(object: unknown, key: unknown): { found: boolean; value: unknown } {
  if (Array.isArray(object)) {
    const n = toNumber(key);
    if (!Number.isFinite(n) || n < 0) return { found: false, value: null };
    const i = Math.floor(n);
    return i < object.length ? { found: true, value: object[i] } : { found: false, value: null };
  }
  if (isObject(object)) return lookup(object, toStr(key));
  return { found: false, value: null };
}

function dereference(object: unknown, key: unknown): unknown {
  if (Array.isArray(object) && filtered.has(object)) {
    const out: unknown[] = [];
    for (const item of object) {
      // Only arrays are indexed by number and only objects by name inside a filter.
      if (Array.isArray(item) ? typeof key !== "number" : typeof key !== "string") continue;
      const hit = access(item, key);
      if (hit.found) out.push(hit.value);
    }
    return filteredArray(out);
  }
  const hit = access(object, key);
  return hit.found ? (hit.value ?? null) : null;
}

function wildcard(object: unknown): unknown[] {
  const spread = (v: unknown): unknown[] => (Array.isArray(v) ? [...v] : isObject(v) ? Object.values(v) : []);
  if (Array.isArray(object) && filtered.has(object)) return filteredArray(object.flatMap(spread));
  return filteredArray(spread(object));
}

function call(name: string, args: Ast[], ctx: ExpressionContext): unknown {
  const status = ctx.status ?? "success";
  const statusFn = (fn: StatusFunctionName): boolean => {
    switch (fn) {
      case "always":
        return true;
      case "success":
        return status === "success";
      case "failure":
        return status === "failure";
      case "cancelled":
        return status === "cancelled";
    }
  };
  const values = (): unknown[] => args.map((a) => evaluate(a, ctx));
  switch (name) {
    case "success":
    case "failure":
    case "always":
    case "cancelled":
      return statusFn(name);
    case "contains": {
      const [search, item] = values();
      if (Array.isArray(search)) return search.some((e) => looseEquals(e, item));
      return toStr(search).toUpperCase().includes(toStr(item).toUpperCase());
    }
    case "startsWith": {
      const [s, prefix] = values();
      return toStr(s).toUpperCase().startsWith(toStr(prefix).toUpperCase());
    }
    case "endsWith": {
      const [s, suffix] = values();
      return toStr(s).toUpperCase().endsWith(toStr(suffix).toUpperCase());
    }
    case "format": {
      const [fmt, ...rest] = values();
      return format(toStr(fmt), rest);
    }
    case "join": {
      const [items, sep] = values();
      const separator = args.length > 1 ? toStr(sep) : ",";
      return Array.isArray(items) ? items.map(toStr).join(separator) : toStr(items);
    }
    case "toJSON":
      return JSON.stringify(values()[0] ?? null, null, 2);
    case "fromJSON": {
      const text = toStr(values()[0]);
      try {
        return JSON.parse(text) as unknown;
      } catch {
        throw evaluationError("fromJSON(): the argument is not valid JSON");
      }
    }
    case "hashFiles": {
      if (!ctx.hashFiles) throw evaluationError("hashFiles() is not available here", "use it inside a step");
      return ctx.hashFiles(values().map(toStr));
    }
    default:
      throw evaluationError(`unknown function '${name}'`);
  }
}

/** format('{0} and {1}', a, b); '{{' and '}}' write literal braces. */
export function format(template: string, args: unknown[]): string {
  let out = "";
  for (let i = 0; i < template.length; i++) {
    const ch = template[i];
    if (ch === "{") {
      if (template[i + 1] === "{") {
        out += "{";
        i++;
        continue;
      }
      const m = /^\{(\d+)\}/.exec(template.slice(i));
      if (!m)
        throw evaluationError(
          `format(): invalid placeholder at index ${i}`,
          "write {0}, {1}… or escape { as {{",
        );
      const n = Number(m[1]);
      if (n >= args.length) {
        throw evaluationError(`format(): placeholder {${n}} has no argument (${args.length} given)`);
      }
      out += toStr(args[n]);
      i += m[0].length - 1;
    } else if (ch === "}") {
      if (template[i + 1] !== "}")
        throw evaluationError(`format(): unmatched '}' at index ${i}`, "escape } as }}");
      out += "}";
      i++;
    } else {
      out += ch;
    }
  }
  return out;
}
