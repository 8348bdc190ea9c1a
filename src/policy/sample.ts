import type { GetSecretInput, PromoteInput, PromotionFacts, RunJobInput, WorkloadClaims } from "./context.js";

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

/** The claims of a push to protected main of acme/web, no environment; override to vary. */
export function sampleWorkloadClaims(overrides: Partial<WorkloadClaims> = {}): WorkloadClaims {
  return {
    sub: "repo:acme/web:ref:refs/heads/main",
    repository: "acme/web",
    repository_owner: "acme",
    ref: "refs/heads/main",
    ref_type: "branch",
    ref_protected: "true",
    sha: "0123456789abcdef0123456789abcdef01234567",
    workflow: "ci",
    workflow_ref: "acme/web/.github/workflows/ci.yml@refs/heads/main",
    job_workflow_ref: "acme/web/.github/workflows/ci.yml@refs/heads/main",
    run_id: "run_sample",
    run_attempt: "1",
    actor: "alice",
    event_name: "push",
    runner_environment: "self-hosted",
    head_ref: "",
    base_ref: "",
    ...overrides,
  };
}

/** A GetSecret request for acme/web's repository secret NPM_TOKEN by a push job; override to vary. */
export function sampleGetSecretInput(
  claims: Partial<WorkloadClaims> = {},
  secret: Partial<GetSecretInput["secret"]> = {},
): GetSecretInput {
  return {
    workload: { jobId: "job_sample", claims: sampleWorkloadClaims(claims) },
    secret: { name: "NPM_TOKEN", scope: "repo", org: "acme", repo: "acme/web", environment: "", ...secret },
  };
}

/** alice promoting a push build of protected main of acme/web to production; override to vary. */
export function samplePromoteInput(
  facts: Partial<PromotionFacts> = {},
  overrides: Partial<Omit<PromoteInput, "facts">> = {},
): PromoteInput {
  return {
    actor: { id: "alice", roles: ["release-manager"] },
    channel: "production",
    artifact: `sha256:${"ab".repeat(32)}`,
    facts: {
      repo: "acme/web",
      ref: "refs/heads/main",
      refProtected: true,
      event: "push",
      workflow: ".github/workflows/release.yml",
      builderId: "https://airlock.example/builders/self-hosted@v1",
      runnerId: "rnr_sample",
      sha: "0123456789abcdef0123456789abcdef01234567",
      ...facts,
    },
    ...overrides,
  };
}
