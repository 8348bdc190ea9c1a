/**
 * The Cedar schema Airlock evaluates against. It lives in a TS constant rather than a
 * .cedarschema file so that `tsc` output needs no asset copying and `src/` and `dist/` behave the
 * same. The context fields are documented in README.md; `context.ts` is the only code that builds
 * them, so a change here goes with a change there.
 */
export const SCHEMA_TEXT = `namespace Airlock {
  entity Actor = {
    roles: Set<String>,
  };

  entity Repo = {
    name: String,
  };

  // Jobs are members of their repo so a policy can say \`resource in Airlock::Repo::"acme/web"\`.
  entity Job in [Repo] = {
    name: String,
    repo: Repo,
  };

  entity Environment = {
    name: String,
  };

  entity Pool;

  type RunJobContext = {
    event: String,
    isPullRequest: Bool,
    ref: String,
    refType: String,
    refProtected: Bool,
    environment: String,
    hasEnvironment: Bool,
    permissions: Set<String>,
    deployPermission: Bool,
    privileged: Bool,
    hostMounts: Set<String>,
    hasHostMounts: Bool,
    egressMode: String,
    egressAllow: Set<String>,
    pool: String,
  };

  action RunJob appliesTo {
    principal: Actor,
    resource: Job,
    context: RunJobContext,
  };

  // A running job presenting its OIDC ID token to the secret broker; id is the \`job_…\` id the
  // token was issued to. A member of its repo, so \`principal in Airlock::Repo::"acme/web"\` works.
  entity Workload in [Repo] = {
    repo: Repo,
  };

  // One stored secret as the broker resolved it. \`scope\` is "org", "repo" or "environment";
  // \`repo\` and \`environment\` are "" where the scope has none.
  entity Secret = {
    name: String,
    scope: String,
    org: String,
    repo: String,
    environment: String,
  };

  // The verified ID token's claims, as GitHub names and spells them (every value a string, so
  // \`ref_protected\` is "true" or "false"); absent optional claims are "".
  type WorkloadClaims = {
    sub: String,
    repository: String,
    repository_owner: String,
    ref: String,
    ref_type: String,
    ref_protected: String,
    sha: String,
    workflow: String,
    workflow_ref: String,
    job_workflow_ref: String,
    run_id: String,
    run_attempt: String,
    actor: String,
    event_name: String,
    environment: String,
    runner_environment: String,
    head_ref: String,
    base_ref: String,
  };

  type GetSecretContext = {
    claims: WorkloadClaims,
    isPullRequest: Bool,
    refProtected: Bool,
    hasEnvironment: Bool,
  };

  action GetSecret appliesTo {
    principal: Workload,
    resource: Secret,
    context: GetSecretContext,
  };

  // Placeholder so user policies can already name it; its context grows when it is used.
  action ApproveJob appliesTo {
    principal: Actor,
    resource: Job,
  };

  // A promotion channel (\`production\`, \`staging\`, …); id is the channel name.
  entity Channel = {
    name: String,
  };

  // Facts from the artifact's verified provenance (the caller verifies signature, digest and
  // revocations first). \`ref\` is short (\`main\`, \`v1.2.0\`); \`refProtected\` is false for
  // pull-request builds whatever the statement says.
  type PromoteContext = {
    artifact: String,
    repo: String,
    ref: String,
    refType: String,
    refProtected: Bool,
    event: String,
    isPullRequest: Bool,
    workflow: String,
    builderId: String,
    runnerId: String,
    sha: String,
  };

  action Promote appliesTo {
    principal: Actor,
    resource: Channel,
    context: PromoteContext,
  };
}
`;
