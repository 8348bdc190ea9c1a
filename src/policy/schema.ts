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

  // Placeholders so user policies can already name them; their contexts grow when they are used.
  action ApproveJob appliesTo {
    principal: Actor,
    resource: Job,
  };

  action Promote appliesTo {
    principal: Actor,
    resource: Environment,
  };
}
`;
