import { posix } from "node:path";
import { AirlockError } from "../../errors.js";
import type { LogPipeline } from "../../logs/pipeline.js";
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

/**
 * How much of its steps' output one job may store. Every byte is kept in the database and
 * buffered until the next flush, so without a cap `yes` (or one endless line) fills the
 * controller's memory and disk; past it, output is read and dropped, the step keeps running.
 */
export const maxJobLogBytes = 64 * 1024 * 1024;

const logged = new WeakMap<LogPipeline, { bytes: number; told: boolean }>();

export function sinkFor(s: StepEnv, cap = maxJobLogBytes): OutputSink {
  let seen = logged.get(s.logs);
  if (!seen) {
    seen = { bytes: 0, told: false };
    logged.set(s.logs, seen);
  }
  const count = seen;
  return {
    write: (stream, chunk) => {
      const room = cap - count.bytes;
      count.bytes += chunk.length;
      if (room >= chunk.length) return s.logs.write(s.stepIdx, stream, chunk);
      if (room > 0) s.logs.write(s.stepIdx, stream, chunk.subarray(0, room));
      if (!count.told) {
        count.told = true;
        s.logs.write(
          s.stepIdx,
          "system",
          `\nLog truncated: this job wrote more than ${cap} bytes of output; the rest is discarded\n`,
        );
      }
    },
  };
}
