import { posix } from "node:path";
import { AirlockError } from "../../errors.js";
import type { OutputSink } from "../../sandbox/index.js";
import type { StepEnv } from "./types.js";

/** A `with: path:` value as a path inside /workspace; anything that climbs out is refused. */
export function sandboxPath(value: string, field: string): string {
  const joined = posix.normalize(posix.join("/workspace", value.trim()));
  if (joined !== "/workspace" && !joined.startsWith("/workspace/")) {
    throw new AirlockError("WORKFLOW_INVALID", `with.${field} "${value}" points outside the workspace`);
  }
  return joined;
}

export function sinkFor(s: StepEnv): OutputSink {
  return { write: (stream, chunk) => s.logs.write(s.stepIdx, stream, chunk) };
}
