import type { FastifyError, FastifyRequest } from "fastify";
import { hasZodFastifySchemaValidationErrors } from "fastify-type-provider-zod";
import { type AirlockError, type ErrorCode, isAirlockError, type SourcePosition } from "../errors.js";
import { scrubbedPath } from "./redact.js";

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
  const base = { instance: scrubbedPath(req.url), requestId: req.id };
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
  // Fastify's own client errors (bad JSON, body too large, wrong content type, a bad or overlong
  // URL) keep their 4xx status, with a fixed text per code: their own messages may quote the URL
  // or the body they choked on (a JSON SyntaxError does), and either may hold a token.
  if (fe && typeof fe.statusCode === "number" && fe.statusCode >= 400 && fe.statusCode < 500) {
    return { problem: clientProblem(fe.statusCode, fixedDetail(fe), base), internal: false };
  }
  return {
    problem: {
      ...common("INTERNAL", 500, "the server failed to handle this request", base),
      hint: `the server log has the details under request id ${req.id}`,
    },
    internal: true,
  };
}

/** A 4xx that is not an AirlockError: the code follows the status; the detail is given. */
export function clientProblem(
  status: number,
  detail: string,
  base: { instance: string; requestId: string },
): Problem {
  const code: ErrorCode =
    status === 401
      ? "UNAUTHENTICATED"
      : status === 403
        ? "FORBIDDEN"
        : status === 404
          ? "NOT_FOUND"
          : "REQUEST_INVALID";
  return common(code, status, detail, base);
}

const fixedDetails: Record<string, string> = {
  FST_ERR_CTP_BODY_TOO_LARGE: "the request body is too large",
  FST_ERR_CTP_INVALID_MEDIA_TYPE: "unsupported media type: request bodies are application/json",
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: "the request body size does not match its Content-Length",
  FST_ERR_CTP_EMPTY_JSON_BODY: "the body is empty but its content-type says application/json",
  // Also what a body with a `__proto__` or `constructor.prototype` key gets: it is refused whole.
  FST_ERR_CTP_INVALID_JSON_BODY:
    "the request body is not valid JSON (keys named __proto__ or constructor are refused)",
  FST_ERR_BAD_URL: "the URL is not valid: a path segment has a malformed percent-escape",
  FST_ERR_MAX_PARAM_LENGTH: "the URL is not valid: a path parameter is too long",
};

function fixedDetail(fe: Partial<FastifyError>): string {
  const known = typeof fe.code === "string" ? fixedDetails[fe.code] : undefined;
  if (known) return known;
  if (fe instanceof SyntaxError) return "the request body is not valid JSON";
  return "the request could not be read";
}

export function notFoundProblem(req: FastifyRequest): Problem {
  const path = scrubbedPath(req.url);
  return {
    ...common("NOT_FOUND", 404, `no route ${req.method} ${path}`, { instance: path, requestId: req.id }),
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
