import { didYouMean } from "../suggest.js";
import {
  type Ast,
  type ComparisonOp,
  type ContextName,
  contextNames,
  type FunctionName,
  functions,
} from "./ast.js";
import { expressionError } from "./errors.js";
import { type Punct, type Token, tokenize } from "./lexer.js";

/** GitHub's own limits; they also bound the recursion of this parser on hostile input. */
export const maxExpressionLength = 21_000;
export const maxExpressionDepth = 50;
/**
 * Chains (`a.b.c…`, `x || y || …`) are parsed in loops, not recursion, so the nesting limit above
 * does not see them; but every consumer of the AST (walk, evaluate) recurses. A 21,000-character
 * chain would overflow their stack, so the tree's total depth is bounded too.
 */
export const maxAstDepth = 500;

const functionNames = Object.keys(functions) as FunctionName[];

// Contexts GitHub has but Airlock does not; naming them gets a better hint than "unknown".
const unsupportedContexts: Record<string, string> = {
  matrix: "matrix builds are not supported; write one job per variant",
  strategy: "matrix builds are not supported; write one job per variant",
  jobs: "reusable workflows are not supported",
};

/** Parses one expression (the text inside `${{ }}`). Throws AirlockError EXPRESSION_INVALID. */
export function parseExpression(src: string): Ast {
  if (src.length > maxExpressionLength) {
    throw expressionError(`expression is longer than ${maxExpressionLength} characters`, 0, src);
  }
  const parser = new Parser(src, tokenize(src));
  if (parser.peek().kind === "eof") throw expressionError("expression is empty", 0, src);
  const ast = parser.parseOr();
  const rest = parser.peek();
  if (rest.kind !== "eof") throw expressionError(`unexpected ${describe(rest)}`, rest.offset, src);
  const deepest = deepestNode(ast);
  if (deepest) {
    throw expressionError(
      `expression is nested or chained more than ${maxAstDepth} levels deep`,
      deepest.offset,
      src,
      "split it into several expressions or steps",
    );
  }
  return ast;
}

/** The first node below `maxAstDepth`, found without recursion (the tree may be that deep). */
function deepestNode(root: Ast): Ast | undefined {
  const stack: [Ast, number][] = [[root, 1]];
  for (let item = stack.pop(); item; item = stack.pop()) {
    const [node, depth] = item;
    if (depth > maxAstDepth) return node;
    for (const child of children(node)) stack.push([child, depth + 1]);
  }
  return undefined;
}

function children(node: Ast): Ast[] {
  switch (node.kind) {
    case "member":
    case "wildcard":
      return [node.object];
    case "index":
      return [node.object, node.index];
    case "not":
      return [node.operand];
    case "compare":
    case "logical":
      return [node.left, node.right];
    case "call":
      return node.args;
    default:
      return [];
  }
}

function describe(token: Token): string {
  switch (token.kind) {
    case "eof":
      return "end of expression";
    case "ident":
      return `identifier '${token.text}'`;
    default:
      return `'${token.text}'`;
  }
}

class Parser {
  private pos = 0;
  private depth = 0;

  constructor(
    private readonly src: string,
    private readonly tokens: Token[],
  ) {}

  peek(): Token {
    return this.tokens[this.pos] as Token;
  }

  private next(): Token {
    const token = this.peek();
    if (token.kind !== "eof") this.pos++;
    return token;
  }

  private isPunct(value: Punct): boolean {
    const t = this.peek();
    return t.kind === "punct" && t.value === value;
  }

  private expectPunct(value: Punct): Token {
    const t = this.peek();
    if (!this.isPunct(value))
      throw expressionError(`expected '${value}' but found ${describe(t)}`, t.offset, this.src);
    return this.next();
  }

  private fail(token: Token): never {
    throw expressionError(`unexpected ${describe(token)}`, token.offset, this.src);
  }

  private nest<T>(offset: number, fn: () => T): T {
    if (++this.depth > maxExpressionDepth) {
      throw expressionError(`expression nests deeper than ${maxExpressionDepth} levels`, offset, this.src);
    }
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  // Precedence, lowest first: || && (== !=) (< <= > >=) ! then postfix . [ ]
  parseOr(): Ast {
    let left = this.parseAnd();
    while (this.isPunct("||")) {
      this.next();
      left = { kind: "logical", op: "||", left, right: this.parseAnd(), offset: left.offset };
    }
    return left;
  }

  private parseAnd(): Ast {
    let left = this.parseEquality();
    while (this.isPunct("&&")) {
      this.next();
      left = { kind: "logical", op: "&&", left, right: this.parseEquality(), offset: left.offset };
    }
    return left;
  }

  private parseEquality(): Ast {
    let left = this.parseRelational();
    while (this.isPunct("==") || this.isPunct("!=")) {
      const op = this.next().text as ComparisonOp;
      left = { kind: "compare", op, left, right: this.parseRelational(), offset: left.offset };
    }
    return left;
  }

  private parseRelational(): Ast {
    let left = this.parseUnary();
    while (this.isPunct("<") || this.isPunct("<=") || this.isPunct(">") || this.isPunct(">=")) {
      const op = this.next().text as ComparisonOp;
      left = { kind: "compare", op, left, right: this.parseUnary(), offset: left.offset };
    }
    return left;
  }

  private parseUnary(): Ast {
    const t = this.peek();
    if (t.kind === "punct" && t.value === "!") {
      this.next();
      return this.nest(t.offset, () => ({ kind: "not", operand: this.parseUnary(), offset: t.offset }));
    }
    return this.parsePostfix();
  }

  private parsePostfix(): Ast {
    const t = this.peek();
    let node = this.parsePrimary();
    // Literals cannot be dereferenced; contexts, calls and groups can (`fromJSON(x).a`, `(a || b).c`).
    if (node.kind === "literal") return node;
    for (;;) {
      if (this.isPunct(".")) {
        this.next();
        const name = this.next();
        if (name.kind === "punct" && name.value === "*") {
          node = { kind: "wildcard", object: node, offset: t.offset };
        } else if (name.kind === "ident") {
          node = { kind: "member", object: node, property: name.value, offset: t.offset };
        } else {
          throw expressionError(
            `expected a property name after '.' but found ${describe(name)}`,
            name.offset,
            this.src,
          );
        }
      } else if (this.isPunct("[")) {
        const open = this.next();
        if (this.isPunct("*")) {
          this.next();
          node = { kind: "wildcard", object: node, offset: t.offset };
        } else {
          const object: Ast = node;
          const index = this.nest(open.offset, () => this.parseOr());
          node = { kind: "index", object, index, offset: t.offset };
        }
        this.expectPunct("]");
      } else {
        return node;
      }
    }
  }

  private parsePrimary(): Ast {
    const t = this.next();
    switch (t.kind) {
      case "number":
        return { kind: "literal", value: t.value, offset: t.offset };
      case "string":
        return { kind: "literal", value: t.value, offset: t.offset };
      case "punct":
        if (t.value === "(") {
          const inner = this.nest(t.offset, () => this.parseOr());
          this.expectPunct(")");
          return inner;
        }
        return this.fail(t);
      case "eof":
        return this.fail(t);
      case "ident":
        return this.parseIdentifier(t);
    }
  }

  private parseIdentifier(t: Token & { kind: "ident" }): Ast {
    if (this.isPunct("(")) return this.parseCall(t);
    switch (t.value) {
      case "true":
        return { kind: "literal", value: true, offset: t.offset };
      case "false":
        return { kind: "literal", value: false, offset: t.offset };
      case "null":
        return { kind: "literal", value: null, offset: t.offset };
      case "NaN":
        return { kind: "literal", value: Number.NaN, offset: t.offset };
      case "Infinity":
        return { kind: "literal", value: Number.POSITIVE_INFINITY, offset: t.offset };
    }
    const lower = t.value.toLowerCase();
    const name = contextNames.find((c) => c === lower);
    if (name) return { kind: "context", name: name as ContextName, offset: t.offset };
    const hint = unsupportedContexts[lower] ?? didYouMean(t.value, contextNames);
    throw expressionError(
      `unknown context '${t.value}'`,
      t.offset,
      this.src,
      hint ?? `contexts are: ${contextNames.join(", ")}`,
    );
  }

  private parseCall(t: Token & { kind: "ident" }): Ast {
    const lower = t.value.toLowerCase();
    const name = functionNames.find((f) => f.toLowerCase() === lower);
    if (!name) {
      throw expressionError(
        `unknown function '${t.value}'`,
        t.offset,
        this.src,
        didYouMean(t.value, functionNames) ?? `functions are: ${functionNames.join(", ")}`,
      );
    }
    this.expectPunct("(");
    const args: Ast[] = [];
    if (!this.isPunct(")")) {
      for (;;) {
        args.push(this.nest(t.offset, () => this.parseOr()));
        if (this.isPunct(",")) {
          this.next();
          continue;
        }
        break;
      }
    }
    this.expectPunct(")");
    const [min, max] = functions[name];
    if (args.length < min || args.length > max) {
      const expected =
        min === max ? `${min}` : max === Number.POSITIVE_INFINITY ? `at least ${min}` : `${min} or ${max}`;
      throw expressionError(
        `${name}() takes ${expected} argument${expected === "1" ? "" : "s"}, got ${args.length}`,
        t.offset,
        this.src,
      );
    }
    return { kind: "call", name, args, offset: t.offset };
  }
}
