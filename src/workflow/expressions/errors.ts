import { AirlockError } from "../../errors.js";

/**
 * Expression problems carry the 0-based offset inside the expression source in `details`, so the
 * workflow parser can turn it into a file:line:col without re-parsing the message.
 */
export function expressionError(reason: string, offset: number, source: string, hint?: string): AirlockError {
  return new AirlockError("EXPRESSION_INVALID", `${reason} (column ${offset + 1} of expression)`, {
    ...(hint === undefined ? {} : { hint }),
    details: { reason, offset, expression: source },
  });
}

/** Runtime failures (bad JSON, bad format string). Messages never echo values: they may be secrets. */
export function evaluationError(reason: string, hint?: string): AirlockError {
  return new AirlockError("EXPRESSION_INVALID", reason, {
    ...(hint === undefined ? {} : { hint }),
    details: { reason },
  });
}
