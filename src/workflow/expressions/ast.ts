/**
 * The expression AST. Every node carries `offset`, the index in the expression source where it
 * starts, so intake can point at the exact column of a problem inside a workflow file.
 */

export const contextNames = [
  "github",
  "env",
  "inputs",
  "needs",
  "steps",
  "secrets",
  "job",
  "runner",
  "vars",
] as const;
export type ContextName = (typeof contextNames)[number];

/** Built-in functions with their [min, max] argument counts. Names are matched case-insensitively. */
export const functions = {
  contains: [2, 2],
  startsWith: [2, 2],
  endsWith: [2, 2],
  format: [1, Number.POSITIVE_INFINITY],
  join: [1, 2],
  toJSON: [1, 1],
  fromJSON: [1, 1],
  hashFiles: [1, Number.POSITIVE_INFINITY],
  success: [0, 0],
  failure: [0, 0],
  always: [0, 0],
  cancelled: [0, 0],
} as const satisfies Record<string, readonly [number, number]>;
export type FunctionName = keyof typeof functions;

export const statusFunctions = ["success", "failure", "always", "cancelled"] as const;
export type StatusFunctionName = (typeof statusFunctions)[number];

export function isStatusFunction(name: FunctionName): name is StatusFunctionName {
  return (statusFunctions as readonly string[]).includes(name);
}

export type Literal = null | boolean | number | string;
export type ComparisonOp = "==" | "!=" | "<" | "<=" | ">" | ">=";

export type Ast =
  | { kind: "literal"; value: Literal; offset: number }
  | { kind: "context"; name: ContextName; offset: number }
  /** `a.b` */
  | { kind: "member"; object: Ast; property: string; offset: number }
  /** `a[expr]` */
  | { kind: "index"; object: Ast; index: Ast; offset: number }
  /** `a.*` or `a[*]`: an object filter */
  | { kind: "wildcard"; object: Ast; offset: number }
  | { kind: "not"; operand: Ast; offset: number }
  | { kind: "compare"; op: ComparisonOp; left: Ast; right: Ast; offset: number }
  | { kind: "logical"; op: "&&" | "||"; left: Ast; right: Ast; offset: number }
  | { kind: "call"; name: FunctionName; args: Ast[]; offset: number };

/** Depth-first visit of every node, parents before children. */
export function walk(ast: Ast, visit: (node: Ast, parent: Ast | undefined) => void, parent?: Ast): void {
  visit(ast, parent);
  switch (ast.kind) {
    case "member":
    case "wildcard":
      walk(ast.object, visit, ast);
      break;
    case "index":
      walk(ast.object, visit, ast);
      walk(ast.index, visit, ast);
      break;
    case "not":
      walk(ast.operand, visit, ast);
      break;
    case "compare":
    case "logical":
      walk(ast.left, visit, ast);
      walk(ast.right, visit, ast);
      break;
    case "call":
      for (const arg of ast.args) walk(arg, visit, ast);
      break;
    case "literal":
    case "context":
      break;
  }
}

/** True when the expression calls success(), failure(), always() or cancelled() anywhere. */
export function usesStatusFunction(ast: Ast): boolean {
  let found = false;
  walk(ast, (node) => {
    if (node.kind === "call" && isStatusFunction(node.name)) found = true;
  });
  return found;
}

/**
 * A context reference: `secrets.TOKEN` gives { context: "secrets", key: "TOKEN" }. `key` is
 * undefined when the first level is computed (`secrets[inputs.name]`) or the whole context is
 * used (`toJSON(secrets)`), which is what intake needs to refuse dynamic secret access.
 */
export interface ContextRef {
  context: ContextName;
  key: string | undefined;
  offset: number;
}

export function contextRefs(ast: Ast): ContextRef[] {
  const refs: ContextRef[] = [];
  walk(ast, (node, parent) => {
    if (node.kind !== "context") return;
    let key: string | undefined;
    if (parent?.kind === "member" && parent.object === node) key = parent.property;
    else if (
      parent?.kind === "index" &&
      parent.object === node &&
      parent.index.kind === "literal" &&
      typeof parent.index.value === "string"
    )
      key = parent.index.value;
    refs.push({ context: node.name, key, offset: node.offset });
  });
  return refs;
}
