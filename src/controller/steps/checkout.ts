import { archive } from "../../repos/git-source.js";
import { sandboxPath, sinkFor } from "./paths.js";
import type { StepEnv, StepResult } from "./types.js";

/**
 * actions/checkout: the repository at the run's sha, from its local git source, without network.
 * git reads the source on the host; the archive is unpacked by tar inside the job's sandbox, so
 * whatever the workspace already holds (symlinks included) resolves in the sandbox's view only.
 */
export async function checkout(s: StepEnv): Promise<StepResult> {
  const dest = sandboxPath(s.with.path ?? "", "path");
  const git = archive(s.repo.source, s.run.sha);
  s.logs.write(s.stepIdx, "system", `Checking out ${s.repo.name} at ${s.run.sha} into ${dest}\n`);
  const result = await s.sandbox.exec(
    {
      argv: ["sh", "-c", 'mkdir -p -- "$1" && exec tar -x --no-same-owner -f - -C "$1"', "checkout", dest],
      env: s.env,
      stdin: git.tar,
      timeoutMs: s.timeoutMs,
      signal: s.signal,
      expectMore: s.expectMore,
    },
    sinkFor(s),
  );
  await git.done;
  return result;
}
