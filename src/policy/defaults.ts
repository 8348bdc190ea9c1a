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
`;
