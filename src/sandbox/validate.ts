import { AirlockError } from "../errors.js";
import type { SandboxLimits, SandboxSpec } from "./types.js";

// The job id ends up in paths, cgroup names and the hostname: keep it to a safe alphabet.
const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$/;

export function assertJobId(jobId: string): void {
  if (!JOB_ID.test(jobId)) {
    throw new AirlockError("SANDBOX_FAILED", `invalid sandbox job id ${JSON.stringify(jobId)}`, {
      hint: "job ids are 1-63 characters of letters, digits, '_' and '-' (e.g. job_abc123)",
    });
  }
}

export function assertLimits(limits: SandboxLimits): void {
  const bad = (what: string, hint: string): never => {
    throw new AirlockError("SANDBOX_FAILED", `invalid sandbox limit: ${what}`, { hint });
  };
  if (!Number.isSafeInteger(limits.memoryBytes) || limits.memoryBytes < 16 * 1024 * 1024) {
    bad(`memoryBytes=${limits.memoryBytes}`, "memoryBytes must be an integer of at least 16 MiB");
  }
  // bwrap itself needs a few pids (wrapper, monitor, init) before the step starts.
  if (!Number.isSafeInteger(limits.pids) || limits.pids < 8) {
    bad(`pids=${limits.pids}`, "pids must be an integer of at least 8");
  }
  if (!Number.isInteger(limits.cpuWeight) || limits.cpuWeight < 1 || limits.cpuWeight > 10000) {
    bad(
      `cpuWeight=${limits.cpuWeight}`,
      "cpuWeight must be an integer in 1..10000 (100 is the default share)",
    );
  }
}

export function assertSpec(spec: SandboxSpec): void {
  assertJobId(spec.jobId);
  assertLimits(spec.limits);
  // Root (or a system uid) outside would make a user-namespace escape worth something.
  if (!Number.isInteger(spec.uid) || spec.uid < 1000 || spec.uid >= 0xffff_fffe) {
    throw new AirlockError("SANDBOX_FAILED", `invalid sandbox uid ${spec.uid}`, {
      hint: "jobs run as an unprivileged host uid of at least 1000 (Airlock allocates them from a range such as 200000+)",
    });
  }
  if (spec.network) {
    const [program] = spec.network.enterArgv;
    // The prefix runs as root: it must name a program by absolute path and carry no NUL.
    if (!program?.startsWith("/") || spec.network.enterArgv.some((a) => a.includes("\0"))) {
      throw new AirlockError("SANDBOX_FAILED", "invalid network entry command for the sandbox", {
        hint: "network.enterArgv must start with an absolute program path, e.g. /usr/bin/nsenter",
      });
    }
    if (spec.network.resolvConf.includes("\0")) {
      throw new AirlockError("SANDBOX_FAILED", "resolv.conf for the sandbox contains a NUL byte");
    }
  }
}
