import { AirlockError } from "../../errors.js";
import { sinkFor } from "./paths.js";
import type { StepEnv, StepResult } from "./types.js";

/** GitHub's shells, as argv around the script text; bash fails on the first error and in pipes. */
export function shellArgv(shell: string | undefined, script: string): string[] {
  switch (shell ?? "bash") {
    case "bash":
      return ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", script];
    case "sh":
      return ["sh", "-e", "-c", script];
    case "python":
      return ["python3", "-c", script];
    case "node":
      return ["node", "-e", script];
    default: {
      // A custom template such as `perl {0}` would need the script in a file; not offered yet.
      throw new AirlockError(
        "WORKFLOW_INVALID",
        `shell "${shell}" is not supported (use bash, sh, python or node)`,
      );
    }
  }
}

export async function runScript(
  s: StepEnv,
  script: string,
  shell: string | undefined,
  cwd: string,
): Promise<StepResult> {
  return s.sandbox.exec(
    { argv: shellArgv(shell, script), env: s.env, cwd, timeoutMs: s.timeoutMs, signal: s.signal },
    sinkFor(s),
  );
}
