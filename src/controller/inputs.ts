/**
 * workflow_dispatch inputs, checked at intake against what the workflow declares. A value the
 * requester makes up is refused here, naming the input, instead of reaching `${{ inputs.x }}` as
 * whatever string was sent; declared defaults are filled in, as GitHub does.
 */
import { AirlockError } from "../errors.js";
import type { Workflow, WorkflowInput } from "../workflow/index.js";
import { closest } from "../workflow/suggest.js";

/** As on GitHub. */
export const maxInputs = 25;
export const maxInputBytes = 65_536;

const environmentName = /^[A-Za-z0-9_.-]{1,100}$/;

export function resolveInputs(
  workflow: Workflow,
  event: string,
  given: Readonly<Record<string, string>> | undefined,
): Record<string, string> {
  const names = Object.keys(given ?? {});
  const where = `${workflow.file} on.workflow_dispatch.inputs`;
  if (event !== "workflow_dispatch") {
    if (names.length === 0) return {};
    throw new AirlockError(
      "REQUEST_INVALID",
      `inputs are only for workflow_dispatch runs; this run is a ${event} (got ${names.map((n) => JSON.stringify(n)).join(", ")})`,
      { hint: "drop the inputs, or pass --event workflow_dispatch" },
    );
  }
  const declared: Record<string, WorkflowInput> = workflow.on.workflow_dispatch?.inputs ?? {};
  if (names.length > maxInputs) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `${names.length} inputs given; at most ${maxInputs} are allowed`,
    );
  }
  // Input names are case-insensitive on GitHub; each given name maps to exactly one declared one.
  const declaredNames = Object.keys(declared);
  const out: Record<string, string> = {};
  for (const name of names) {
    const match = declaredNames.find((d) => d.toLowerCase() === name.toLowerCase());
    if (!match) {
      const near = closest(name, declaredNames);
      throw new AirlockError("REQUEST_INVALID", `${where} declares no input ${JSON.stringify(name)}`, {
        hint: near
          ? `did you mean "${near}"?`
          : declaredNames.length > 0
            ? `inputs are: ${declaredNames.join(", ")}`
            : "the workflow takes no inputs",
      });
    }
    if (Object.hasOwn(out, match)) {
      throw new AirlockError(
        "REQUEST_INVALID",
        `input "${match}" is given twice (names are case-insensitive)`,
      );
    }
    out[match] = checkValue(match, declared[match] as WorkflowInput, String(given?.[name] ?? ""), where);
  }
  for (const [name, input] of Object.entries(declared)) {
    if (Object.hasOwn(out, name)) continue;
    if (input.default !== undefined) out[name] = String(input.default);
    else if (input.required) {
      throw new AirlockError("REQUEST_INVALID", `input "${name}" is required (${where})`, {
        hint: `pass --input ${name}=VALUE`,
      });
    }
  }
  return out;
}

function checkValue(name: string, input: WorkflowInput, value: string, where: string): string {
  const bad = (why: string, hint?: string) =>
    new AirlockError("REQUEST_INVALID", `input "${name}" ${why} (${where})`, hint ? { hint } : {});
  if (Buffer.byteLength(value, "utf8") > maxInputBytes) throw bad(`is longer than ${maxInputBytes} bytes`);
  // A NUL cannot travel in an environment variable or argv; refuse it rather than truncate.
  if (value.includes("\0")) throw bad("contains a NUL character");
  switch (input.type) {
    case "boolean":
      if (value !== "true" && value !== "false") throw bad("must be true or false");
      return value;
    case "number":
      if (value.trim() === "" || !Number.isFinite(Number(value))) throw bad("must be a number");
      return value;
    case "choice":
      if (!(input.options ?? []).includes(value)) {
        throw bad(`must be one of ${(input.options ?? []).join(", ")}`);
      }
      return value;
    case "environment":
      if (!environmentName.test(value)) throw bad("must be an environment name");
      return value;
    default:
      return value;
  }
}
