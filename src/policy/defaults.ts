/**
 * The built-in policies. They are always loaded and a user file cannot reuse their ids; since a
 * Cedar `forbid` beats any `permit`, user policies can narrow what runs but never re-allow what
 * these forbid.
 */
export const DEFAULT_POLICIES_FILE = "<builtin>";

export const DEFAULT_POLICIES_TEXT = `// Airlock's default policies.

// Anything not forbidden below (or by a user policy) may run.
@id("run-job")
permit (principal, action == Airlock::Action::"RunJob", resource);

// Pull-request code is untrusted: it must not reach an environment's secrets or protection.
@id("pull-request-no-environment")
forbid (principal, action == Airlock::Action::"RunJob", resource)
when { context.isPullRequest && context.hasEnvironment };

// Nor may it ask for a token that can publish, deploy or mint cloud credentials.
@id("pull-request-no-deploy")
forbid (principal, action == Airlock::Action::"RunJob", resource)
when { context.isPullRequest && context.deployPermission };

// An environment is only as safe as the ref that deploys to it: anyone who can push an
// unprotected branch could otherwise run code with the environment's secrets.
@id("environment-requires-protected-ref")
forbid (principal, action == Airlock::Action::"RunJob", resource)
when { context.hasEnvironment && !context.refProtected };

@id("no-privileged")
forbid (principal, action == Airlock::Action::"RunJob", resource)
when { context.privileged };

@id("no-host-mounts")
forbid (principal, action == Airlock::Action::"RunJob", resource)
when { context.hasHostMounts };

// Secrets (GetSecret). The principal is a running job (Workload), context.claims its verified ID
// token. The broker only ever looks up the token's own org, repo and named environment; these
// rules say the same in policy, so a user permit cannot widen it and a user forbid can narrow it.

// A job may read its organisation's and repository's secrets, and an environment's secrets when
// its token names that environment, unless something forbids it.
@id("secret-scope-match")
permit (principal, action == Airlock::Action::"GetSecret", resource)
when {
  (resource.scope == "org" && resource.org == context.claims.repository_owner) ||
  (resource.scope == "repo" && resource.repo == context.claims.repository) ||
  (resource.scope == "environment" &&
    resource.repo == context.claims.repository &&
    resource.environment == context.claims.environment)
};

// Never another organisation's or repository's secret, whatever a user permit says.
@id("secret-outside-repository")
forbid (principal, action == Airlock::Action::"GetSecret", resource)
when {
  (resource.scope == "org" && resource.org != context.claims.repository_owner) ||
  (resource.scope != "org" && resource.repo != context.claims.repository)
};

// Pull-request code is untrusted: environment secrets are for deployments, never for PRs.
@id("pull-request-no-environment-secrets")
forbid (principal, action == Airlock::Action::"GetSecret", resource)
when { context.isPullRequest && resource.scope == "environment" };

// An environment's secrets go only to a job whose token names that environment.
@id("secret-environment-mismatch")
forbid (principal, action == Airlock::Action::"GetSecret", resource)
when { resource.scope == "environment" && resource.environment != context.claims.environment };

// As for RunJob's environment-requires-protected-ref: only a protected ref deploys.
@id("environment-secrets-require-protected-ref")
forbid (principal, action == Airlock::Action::"GetSecret", resource)
when { resource.scope == "environment" && !context.refProtected };

// Promotion (Promote). The principal is the person promoting, the resource the channel, the
// context the facts of the artifact's provenance, which the caller has verified (signature,
// subject digest, revocations) before asking.

// Every channel accepts an artifact built from a protected ref, unless something forbids it. A
// build from any other ref needs a user permit naming the channel (staging may take any branch).
@id("promote-protected-ref")
permit (principal, action == Airlock::Action::"Promote", resource)
when { context.refProtected };

// Pull-request code is untrusted: its builds are never promoted, whatever a user permit says.
@id("promote-pull-request-never")
forbid (principal, action == Airlock::Action::"Promote", resource)
when { context.isPullRequest };

// Production takes protected refs only; a user permit cannot open it to other branches.
@id("promote-production-requires-protected-ref")
forbid (principal, action == Airlock::Action::"Promote", resource == Airlock::Channel::"production")
when { !context.refProtected };
`;
