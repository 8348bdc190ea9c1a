/** The only place that spawns the host's network tools. Absolute paths: we run as root. */
import { execFile } from "node:child_process";
import { AirlockError } from "../errors.js";

export const IP = "/usr/sbin/ip";
export const NFT = "/usr/sbin/nft";
export const NSENTER = "/usr/bin/nsenter";

export interface RunResult {
  stdout: string;
  stderr: string;
}

export class CommandError extends Error {
  constructor(
    readonly argv: string[],
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${argv.join(" ")} failed (${code ?? "signal"}): ${stderr.trim()}`);
  }
}

export function run(argv: string[], input?: string): Promise<RunResult> {
  const [file, ...args] = argv;
  return new Promise((resolve, reject) => {
    const child = execFile(
      file as string,
      args,
      { env: { PATH: "/usr/sbin:/usr/bin:/sbin:/bin", LC_ALL: "C" }, timeout: 30_000, maxBuffer: 64 << 20 },
      (err, stdout, stderr) => {
        if (err) {
          const code = typeof err.code === "number" ? err.code : null;
          reject(new CommandError(argv, code, String(stderr || err.message)));
        } else resolve({ stdout: String(stdout), stderr: String(stderr) });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** Apply one nft script atomically (`nft -f -`: the whole script commits or nothing does). */
export async function nftApply(script: string): Promise<void> {
  await run([NFT, "-f", "-"], script);
}

export function networkFailure(what: string, cause: unknown): AirlockError {
  return new AirlockError("SANDBOX_FAILED", `${what}: ${cause instanceof Error ? cause.message : cause}`, {
    hint: "the controller must run as root with iproute2 and nftables installed (apt-get install -y iproute2 nftables)",
    cause,
  });
}
