import type { RunJobInput } from "./context.js";

/**
 * A typical allowed request (push to protected main, read-only token) for tests and the bench;
 * override fields to build the case under test.
 */
export function sampleRunJobInput(overrides: Partial<RunJobInput> = {}): RunJobInput {
  return {
    actor: { id: "alice", roles: ["developer"] },
    repo: "acme/web",
    job: { id: "job_sample", name: "build" },
    event: "push",
    ref: "main",
    refType: "branch",
    refProtected: true,
    environment: null,
    permissions: { contents: "read" },
    privileged: false,
    hostMounts: [],
    egress: { mode: "block", allow: [] },
    pool: "default",
    ...overrides,
  };
}
