import type { FastifyError, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { type AirlockError, type ErrorCode, isAirlockError, type SourcePosition } from "../errors.js";

/** An RFC 9457 problem document as Airlock sends it. Extension members carry the machine-readable parts. */
export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: ErrorCode;
  instance: string;
  requestId: string;
  hint?: string;
  position?: SourcePosition;
  errors?: unknown[];
}

export const problemContentType = "application/problem+json";
export const problemTypeBase = "https://airlock.dev/problems/";

export function problemType(code: ErrorCode): string {
  return problemTypeBase + code.toLowerCase();
}

/** "WORKFLOW_INVALID" → "Workflow invalid": stable per code, so clients can show it as a heading. */
function titleOf(code: ErrorCode): string {
  const words = code.toLowerCase().split("_").join(" ");
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/**
 * Turns anything a route or hook threw into a problem document. Only AirlockError messages reach
 * the caller verbatim (they are written to be shown); any other error is reported as INTERNAL with
 * a fixed text, because a driver or library message can carry paths, SQL or input fragments.
 */
export function toProblem(err: unknown, req: FastifyRequest): { problem: Problem; internal: boolean } {
  const base = { instance: pathOf(req.url), requestId: req.id };
  if (isAirlockError(err)) return { problem: fromAirlockError(err, base), internal: false };
  if (hasZodFastifySchemaValidationErrors(err)) {
    const where = (err as FastifyError).validationContext ?? "request";
    // Zod quotes the unknown keys it finds; on a body holding a secret a key may be the value
    // itself (`{"NPM_TOKEN": "…"}` sent the wrong way round), so there they are not named.
    const sensitive = where === "body" && req.routeOptions.config?.sensitiveBody === true;
    const errors = err.validation.map((v) => ({
      location: where,
      path: v.instancePath || "/",
      message:
        sensitive && /unrecognized key/i.test(v.message)
          ? "unrecognized key (not named: it may hold a secret)"
          : v.message,
    }));
    const first = errors[0];
    const detail = `the ${where} is invalid: ${first ? `${first.path}: ${first.message}` : "it does not match the schema"}`;
    return {
      problem: {
        ...common("REQUEST_INVALID", 400, detail, base),
        hint: "see src/server/README.md for the request shapes",
        errors,
      },
      internal: false,
    };
  }
  const fe = err as Partial<FastifyError> | null;
  // Fastify's own client errors (bad JSON, body too large, wrong content type) keep their 4xx
  // status. Their text is replaced unless it is one of Fastify's fixed content-type messages: a
  // JSON SyntaxError quotes the body it choked on, and a body may hold a token.
  if (fe && typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    const status = fe.statusCode;
    const code: ErrorCode =
      status === 401
        ? "UNAUTHENTICATED"
        : status === 403
          ? "FORBIDDEN"
          : status === 404
            ? "NOT_FOUND"
            : "REQUEST_INVALID";
    const detail =
      typeof fe.code === "string" && fe.code.startsWith("FST_ERR_CTP_") && typeof fe.message === "string"
        ? fe.message
        : err instanceof SyntaxError
          ? "the request body is not valid JSON"
          : "the request could not be read";
    return { problem: common(code, status, detail, base), internal: false };
  }
  return {
    problem: {
      ...common("INTERNAL", 500, "the server failed to handle this request", base),
      hint: `the server log has the details under request id ${req.id}`,
    },
    internal: true,
  };
}

export function notFoundProblem(req: FastifyRequest): Problem {
  return {
    ...common("NOT_FOUND", 404, `no route ${req.method} ${pathOf(req.url)}`, {
      instance: pathOf(req.url),
      requestId: req.id,
    }),
    hint: "the API lives under /api/v1; see src/server/README.md for the routes",
  };
}

function fromAirlockError(err: AirlockError, base: { instance: string; requestId: string }): Problem {
  const problem: Problem = common(err.code, err.status, err.message, base);
  if (err.hint) problem.hint = err.hint;
  if (err.position) problem.position = err.position;
  const listed = err.details?.errors;
  if (Array.isArray(listed)) problem.errors = listed;
  else if (err.position) problem.errors = [{ ...err.position, message: err.message }];
  return problem;
}

function common(
  code: ErrorCode,
  status: number,
  detail: string,
  base: { instance: string; requestId: string },
): Problem {
  return { type: problemType(code), title: titleOf(code), status, detail, code, ...base };
}

/** The path without its query: `instance` identifies the resource, and a query is none of its business. */
function pathOf(url: string): string {
  const q = url.indexOf("?");
  return q === -1 ? url : url.slice(0, q);
}
