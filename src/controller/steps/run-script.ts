import { AirlockError } from "../../errors.js";
import { sinkFor } from "./paths.js";
import { scriptFileInSandbox, writeStepScript } from "./step-files.js";
import type { StepEnv, StepResult } from "./types.js";

/**
 * GitHub's shells, as argv around the script file; bash fails on the first error and in pipes.
 * A custom shell is a template naming the file as `{0}`, e.g. `perl {0}`.
 */
export function shellArgv(shell: string | undefined, file: string): string[] {
  switch (shell ?? "bash") {
    case "bash":
      return ["bash", "--noprofile", "--norc", "-eo", "pipefail", file];
    case "sh":
      return ["sh", "-e", file];
    case "python":
      return ["python3", file];
    case "node":
      return ["node", file];
    default: {
      const words = (shell ?? "").trim().split(/\s+/);
      if (!words.includes("{0}")) {
        throw new AirlockError(
          "WORKFLOW_INVALID",
          `shell "${shell}" is neither bash, sh, python nor node, nor a template with {0} for the script file`,
          { hint: "e.g. shell: perl {0}" },
        );
      }
      return words.map((w) => (w === "{0}" ? file : w));
    }
  }
}

export async function runScript(
  s: StepEnv,
  script: string,
  shell: string | undefined,
  cwd: string,
): Promise<StepResult> {
  writeStepScript(s.sandbox.workspaceDir, s.stepIdx, script, s.uid);
  return s.sandbox.exec(
    {
      argv: shellArgv(shell, scriptFileInSandbox(s.stepIdx)),
      env: s.env,
      cwd,
      timeoutMs: s.timeoutMs,
      signal: s.signal,
      expectMore: s.expectMore,
    },
    sinkFor(s),
  );
}
