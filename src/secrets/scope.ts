/**
 * Where a secret lives and what it is called: validation, canonical keys and the lookup order.
 * Pure: no I/O.
 */
import { AirlockError } from "../errors.js";
import { MAX_SECRET_LENGTH, MIN_SECRET_LENGTH, trimSeparators } from "./masker/needles.js";

export type SecretScope =
  | { kind: "org"; org: string }
  | { kind: "repo"; repo: string }
  | { kind: "environment"; repo: string; environment: string };

export type SecretScopeKind = SecretScope["kind"];

/** GitHub's rule, upper case only: letters, digits and `_`, not starting with a digit. */
const namePattern = /^[A-Z_][A-Z0-9_]{0,127}$/;
/** Airlock sets variables with these prefixes itself; a secret must not shadow them. */
const reservedPrefixes = ["GITHUB_", "AIRLOCK_"] as const;
const ownerPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;
const repoPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\/[A-Za-z0-9._-]{1,100}$/;
/** Environment names: 1-255 printable characters, no control characters, no surrounding space. */
const environmentPattern = /^[^\s\p{Cc}](?:[^\p{Cc}]{0,253}[^\s\p{Cc}])?$/u;

/**
 * Secret names are case-insensitive, as on GitHub (`secrets.npm_token` is `NPM_TOKEN`): they are
 * stored and compared upper case.
 */
export function normalizeSecretName(raw: string): string {
  const name = typeof raw === "string" ? raw.toUpperCase() : "";
  if (!namePattern.test(name)) {
    // The rejected text is not echoed: it may be a value pasted where the name belongs.
    throw new AirlockError(
      "REQUEST_INVALID",
      "a secret name must be letters, digits and _, not starting with a digit",
      {
        hint: "at most 128 characters, case-insensitive (stored upper case), e.g. NPM_TOKEN",
      },
    );
  }
  const reserved = reservedPrefixes.find((p) => name.startsWith(p));
  if (reserved) {
    throw new AirlockError(
      "REQUEST_INVALID",
      // Not echoed either: a value pasted as the name would otherwise come back in the error.
      `a secret name must not start with the reserved prefix ${reserved}`,
      {
        hint: "Airlock sets GITHUB_* and AIRLOCK_* variables itself; choose another name",
      },
    );
  }
  return name;
}

/**
 * Refuses a value the log masker could not mask well: shorter than MIN_SECRET_LENGTH once
 * surrounding whitespace is trimmed (masking "abc" shreds ordinary log text and hides nothing),
 * or longer than MAX_SECRET_LENGTH. The error names the secret, never the value.
 */
export function checkSecretValue(name: string, value: unknown): asserts value is string {
  if (typeof value !== "string") {
    throw new AirlockError("REQUEST_INVALID", `the value of secret ${name} must be a string`);
  }
  const core = trimSeparators(value).length;
  if (core < MIN_SECRET_LENGTH) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `secret ${name} is too short: ${core} characters, the minimum is ${MIN_SECRET_LENGTH}`,
      {
        hint: `a secret shorter than ${MIN_SECRET_LENGTH} characters (not counting surrounding whitespace) cannot be masked in logs; use a longer value`,
        details: { name, length: core, minLength: MIN_SECRET_LENGTH },
      },
    );
  }
  if (value.length > MAX_SECRET_LENGTH) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `secret ${name} is too long: ${value.length} characters, the maximum is ${MAX_SECRET_LENGTH}`,
      {
        hint: "store large credentials as files and keep a short key or passphrase as the secret",
        details: { name, length: value.length, maxLength: MAX_SECRET_LENGTH },
      },
    );
  }
}

/** The organisation a repository belongs to: the owner part of `owner/name`. */
export function orgOf(repo: string): string {
  return repo.slice(0, repo.indexOf("/"));
}

/** Validates a scope from the edge (CLI, API); returns a fresh, well-formed one. */
export function parseSecretScope(raw: unknown): SecretScope {
  const o = (raw ?? {}) as Record<string, unknown>;
  const bad = (what: string, hint: string) =>
    new AirlockError("REQUEST_INVALID", `invalid secret scope: ${what}`, { hint });
  const repo = () => {
    if (typeof o.repo !== "string" || !repoPattern.test(o.repo)) {
      throw bad("repo must be owner/name", "e.g. acme/web");
    }
    return o.repo;
  };
  switch (o.kind) {
    case "org":
      if (typeof o.org !== "string" || !ownerPattern.test(o.org)) {
        throw bad("org must be an owner name", "e.g. acme: letters, digits, . _ -");
      }
      return { kind: "org", org: o.org };
    case "repo":
      return { kind: "repo", repo: repo() };
    case "environment": {
      const r = repo();
      if (typeof o.environment !== "string" || !environmentPattern.test(o.environment)) {
        throw bad(
          "environment must be 1-255 characters without control characters or surrounding spaces",
          "e.g. production",
        );
      }
      return { kind: "environment", repo: r, environment: o.environment };
    }
    default:
      throw bad(
        "kind must be org, repo or environment",
        "org for every repo of an owner, repo, or environment",
      );
  }
}

/**
 * The canonical key of a scope: `org:acme`, `repo:acme/web`, `environment:acme/web:production`.
 * Unambiguous because owners and repo names cannot contain `:`.
 */
export function scopeKey(scope: SecretScope): string {
  switch (scope.kind) {
    case "org":
      return `org:${scope.org}`;
    case "repo":
      return `repo:${scope.repo}`;
    case "environment":
      return `environment:${scope.repo}:${scope.environment}`;
  }
}

/** The scope's org (for a repo or environment: the repo's owner). */
export function scopeOrg(scope: SecretScope): string {
  return scope.kind === "org" ? scope.org : orgOf(scope.repo);
}

/** Human form for messages: `organisation acme`, `repository acme/web`, `environment production of acme/web`. */
export function scopeText(scope: SecretScope): string {
  switch (scope.kind) {
    case "org":
      return `organisation ${scope.org}`;
    case "repo":
      return `repository ${scope.repo}`;
    case "environment":
      return `environment ${scope.environment} of ${scope.repo}`;
  }
}

/**
 * The AAD a secret's value is sealed with. It binds the ciphertext (and its wrapped data key) to
 * this scope and name, so a value copied into another secret's row does not open there.
 */
export function secretAad(scope: SecretScope, name: string): string {
  return `airlock:secret:${scopeKey(scope)}:${name}`;
}

/**
 * Where a job's secrets are looked up, most specific first (GitHub's precedence): the
 * environment its token names, then its repository, then its organisation.
 */
export function lookupScopes(job: { repository: string; environment?: string | undefined }): SecretScope[] {
  const scopes: SecretScope[] = [];
  if (job.environment)
    scopes.push({ kind: "environment", repo: job.repository, environment: job.environment });
  scopes.push({ kind: "repo", repo: job.repository }, { kind: "org", org: orgOf(job.repository) });
  return scopes;
}
