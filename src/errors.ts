/**
 * The one error family. `code` is a string-literal union so `switch (err.code)` narrows, and each
 * code belongs to a class that picks the HTTP status and the CLI exit code.
 */
export const errorCodes = {
  WORKFLOW_INVALID: { status: 422, exit: 2 },
  EXPRESSION_INVALID: { status: 422, exit: 2 },
  REQUEST_INVALID: { status: 400, exit: 2 },
  CONFIG_INVALID: { status: 500, exit: 2 },
  REPO_UNAVAILABLE: { status: 422, exit: 2 },
  REF_NOT_FOUND: { status: 422, exit: 2 },
  NOT_FOUND: { status: 404, exit: 4 },
  CONFLICT: { status: 409, exit: 4 },
  INVALID_TRANSITION: { status: 409, exit: 4 },
  POLICY_DENIED: { status: 403, exit: 3 },
  POLICY_INVALID: { status: 500, exit: 2 },
  UNAUTHENTICATED: { status: 401, exit: 3 },
  FORBIDDEN: { status: 403, exit: 3 },
  SANDBOX_UNAVAILABLE: { status: 503, exit: 5 },
  SANDBOX_FAILED: { status: 500, exit: 5 },
  STORE_FAILED: { status: 500, exit: 5 },
  AUDIT_TAMPERED: { status: 500, exit: 6 },
  ARTIFACT_INVALID: { status: 422, exit: 2 },
  SERVER_UNREACHABLE: { status: 502, exit: 5 },
  INTERNAL: { status: 500, exit: 1 },
} as const satisfies Record<string, { status: number; exit: number }>;

export type ErrorCode = keyof typeof errorCodes;

/** Where in a user's file a problem sits; rendered as file:line:col. */
export interface SourcePosition {
  file: string;
  line: number;
  col: number;
}

export interface AirlockErrorOptions {
  hint?: string;
  position?: SourcePosition;
  /** Machine-readable extras (never secret material). */
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class AirlockError extends Error {
  override readonly name = "AirlockError";
  readonly code: ErrorCode;
  readonly hint: string | undefined;
  readonly position: SourcePosition | undefined;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: AirlockErrorOptions = {}) {
    super(options.position ? `${formatPosition(options.position)}: ${message}` : message, {
      cause: options.cause,
    });
    this.code = code;
    this.hint = options.hint;
    this.position = options.position;
    this.details = options.details;
  }

  get status(): number {
    return errorCodes[this.code].status;
  }

  get exitCode(): number {
    return errorCodes[this.code].exit;
  }
}

export function formatPosition(p: SourcePosition): string {
  return `${p.file}:${p.line}:${p.col}`;
}

export function isAirlockError(e: unknown): e is AirlockError {
  return e instanceof AirlockError;
}
