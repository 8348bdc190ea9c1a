/**
 * Turns what admission knows about a job into a Cedar request. Every derived field
 * (`isPullRequest`, `deployPermission`, `hasEnvironment`, …) is computed here and nowhere else,
 * so policies and code agree on what they mean.
 */
import type { CedarValueJson, EntityJson, EntityUidJson } from "@cedar-policy/cedar-wasm/nodejs";

export type PermissionLevel = "read" | "write" | "none";

export interface RunJobInput {
  /** Who triggered the run: the Airlock user or forge login the run is attributed to. */
  actor: { id: string; roles: readonly string[] };
  /** Repository full name, e.g. `acme/web`. */
  repo: string;
  /** `id` is the Airlock job id (`job_…`); `name` is the workflow's job key. */
  job: { id: string; name: string };
  /** Trigger event name as GitHub spells it: `push`, `pull_request`, `workflow_dispatch`, … */
  event: string;
  /** Short ref name (`main`, `v1.2.0`), not `refs/heads/main`. */
  ref: string;
  refType: "branch" | "tag";
  /** Whether the repo's settings protect this ref. Ignored (forced false) for pull-request events. */
  refProtected: boolean;
  /** The job's `environment:` name, or null when it has none. */
  environment: string | null;
  /** Effective token permissions after the workflow/job merge; shorthands already expanded. */
  permissions: Readonly<Record<string, PermissionLevel>>;
  privileged: boolean;
  hostMounts: readonly string[];
  egress: { mode: string; allow: readonly string[] };
  pool: string;
}

/**
 * Events whose code comes from a pull request's head. GitHub runs all four on PR activity, and
 * `pull_request_target` is the most dangerous because it also carries the base repo's secrets.
 */
export const PULL_REQUEST_EVENTS: ReadonlySet<string> = new Set([
  "pull_request",
  "pull_request_target",
  "pull_request_review",
  "pull_request_review_comment",
]);

/**
 * Scopes whose `write` lets a job change something outside its own run: mint cloud credentials
 * (id-token), push code or tags and cut releases (contents), record deployments, publish packages
 * or pages, sign attestations, or dispatch/re-run other workflows — including deploy ones (actions).
 */
export const DEPLOY_SCOPES: ReadonlySet<string> = new Set([
  "actions",
  "attestations",
  "contents",
  "deployments",
  "id-token",
  "packages",
  "pages",
]);

/**
 * `scope:level` strings. `write` implies `read`, so `contains("contents:read")` means "can at
 * least read contents". An unknown level counts as write: over-stating a request is the safe error.
 */
export function permissionSet(permissions: Readonly<Record<string, PermissionLevel>>): string[] {
  const out: string[] = [];
  for (const [scope, level] of Object.entries(permissions)) {
    if (level === "none") continue;
    out.push(`${scope}:read`);
    if (level !== "read") out.push(`${scope}:write`);
  }
  return out.sort();
}

export function hasDeployPermission(permissions: Readonly<Record<string, PermissionLevel>>): boolean {
  return Object.entries(permissions).some(
    ([scope, level]) => DEPLOY_SCOPES.has(scope) && level !== "read" && level !== "none",
  );
}

export interface CedarRequest {
  principal: EntityUidJson;
  action: EntityUidJson;
  resource: EntityUidJson;
  context: Record<string, CedarValueJson>;
  entities: EntityJson[];
}

const ns = "Airlock";

export function runJobRequest(input: RunJobInput): CedarRequest {
  const isPullRequest = PULL_REQUEST_EVENTS.has(input.event);
  const environment = input.environment ?? "";
  const principal = { type: `${ns}::Actor`, id: input.actor.id };
  const repo = { type: `${ns}::Repo`, id: input.repo };
  const resource = { type: `${ns}::Job`, id: input.job.id };
  return {
    principal,
    action: { type: `${ns}::Action`, id: "RunJob" },
    resource,
    context: {
      event: input.event,
      isPullRequest,
      ref: input.ref,
      refType: input.refType,
      // A fork can name its head branch `main`; PR code never runs "from" a protected ref.
      refProtected: input.refProtected && !isPullRequest,
      environment,
      hasEnvironment: environment !== "",
      permissions: permissionSet(input.permissions),
      deployPermission: hasDeployPermission(input.permissions),
      privileged: input.privileged,
      hostMounts: [...input.hostMounts],
      hasHostMounts: input.hostMounts.length > 0,
      egressMode: input.egress.mode,
      egressAllow: [...input.egress.allow],
      pool: input.pool,
    },
    entities: [
      { uid: principal, attrs: { roles: [...input.actor.roles] }, parents: [] },
      { uid: repo, attrs: { name: input.repo }, parents: [] },
      { uid: resource, attrs: { name: input.job.name, repo: { __entity: repo } }, parents: [repo] },
    ],
  };
}

/**
 * The claims of a verified job ID token that GetSecret decisions see. Structurally a subset of
 * identity's JobClaims (so a verified payload passes as is); optional claims may be absent.
 */
export interface WorkloadClaims {
  sub: string;
  repository: string;
  repository_owner: string;
  ref: string;
  ref_type: string;
  ref_protected: string;
  sha: string;
  workflow: string;
  workflow_ref: string;
  job_workflow_ref: string;
  run_id: string;
  run_attempt: string;
  actor: string;
  event_name: string;
  environment?: string | undefined;
  runner_environment: string;
  head_ref: string;
  base_ref: string;
}

/** The claim names GetSecret's `context.claims` carries, in schema order. */
export const WORKLOAD_CLAIM_NAMES = [
  "sub",
  "repository",
  "repository_owner",
  "ref",
  "ref_type",
  "ref_protected",
  "sha",
  "workflow",
  "workflow_ref",
  "job_workflow_ref",
  "run_id",
  "run_attempt",
  "actor",
  "event_name",
  "environment",
  "runner_environment",
  "head_ref",
  "base_ref",
] as const satisfies readonly (keyof WorkloadClaims)[];

export type SecretScopeKind = "org" | "repo" | "environment";

export interface GetSecretInput {
  /** The job the token was issued to (`job_…`) and the token's verified claims. */
  workload: { jobId: string; claims: WorkloadClaims };
  /** The stored secret the broker resolved; `repo`/`environment` are "" where the scope has none. */
  secret: { name: string; scope: SecretScopeKind; org: string; repo: string; environment: string };
}

export function getSecretRequest(input: GetSecretInput): CedarRequest {
  const c = input.workload.claims;
  const claims: Record<string, string> = {};
  // Only string claims cross into Cedar; anything else (a forged shape) reads as "".
  for (const k of WORKLOAD_CLAIM_NAMES) {
    const v = c[k];
    claims[k] = typeof v === "string" ? v : "";
  }
  const isPullRequest = PULL_REQUEST_EVENTS.has(claims.event_name as string);
  const principal = { type: `${ns}::Workload`, id: input.workload.jobId };
  const repo = { type: `${ns}::Repo`, id: claims.repository as string };
  const resource = { type: `${ns}::Secret`, id: secretEntityId(input.secret) };
  const s = input.secret;
  return {
    principal,
    action: { type: `${ns}::Action`, id: "GetSecret" },
    resource,
    context: {
      claims,
      isPullRequest,
      // As for RunJob: a pull request's code never runs "from" a protected ref.
      refProtected: claims.ref_protected === "true" && !isPullRequest,
      hasEnvironment: claims.environment !== "",
    },
    entities: [
      { uid: repo, attrs: { name: claims.repository as string }, parents: [] },
      { uid: principal, attrs: { repo: { __entity: repo } }, parents: [repo] },
      {
        uid: resource,
        attrs: { name: s.name, scope: s.scope, org: s.org, repo: s.repo, environment: s.environment },
        parents: [],
      },
    ],
  };
}

/** `org:acme:NAME`, `repo:acme/web:NAME`, `environment:acme/web:production:NAME`. */
export function secretEntityId(s: GetSecretInput["secret"]): string {
  const where = s.scope === "org" ? s.org : s.scope === "repo" ? s.repo : `${s.repo}:${s.environment}`;
  return `${s.scope}:${where}:${s.name}`;
}

/**
 * What Promote decisions see of an artifact: facts from its provenance statement, which the
 * caller has verified (signature, subject digest, revocations) before asking.
 */
export interface PromotionFacts {
  /** Repository full name, `acme/web`. */
  repo: string;
  /** As the statement records it: `refs/heads/main`, `refs/tags/v1.2.0`, or a short name. */
  ref: string;
  /** Whether the build ran from a protected ref. Ignored (forced false) for pull-request builds. */
  refProtected: boolean;
  /** Trigger event as GitHub spells it: `push`, `pull_request`, … */
  event: string;
  /** Workflow path or name as the statement records it. */
  workflow: string;
  /** The SLSA builder id. */
  builderId: string;
  /** The runner that built it (`rnr_…`). */
  runnerId: string;
  /** The commit built; "" when the statement has none. */
  sha?: string;
}

export interface PromoteInput {
  /** Who asks for the promotion. */
  actor: { id: string; roles: readonly string[] };
  /** The channel name: `production`, `staging`, … */
  channel: string;
  /** The artifact's digest, `sha256:…`. */
  artifact: string;
  facts: PromotionFacts;
}

/** `refs/heads/x` → (x, branch); `refs/tags/v1` → (v1, tag); `refs/pull/7/merge` → (7/merge, pull). */
export function splitRef(ref: string): { ref: string; refType: string } {
  for (const [prefix, refType] of [
    ["refs/heads/", "branch"],
    ["refs/tags/", "tag"],
    ["refs/pull/", "pull"],
  ] as const) {
    if (ref.startsWith(prefix)) return { ref: ref.slice(prefix.length), refType };
  }
  return { ref, refType: "branch" };
}

export function promoteRequest(input: PromoteInput): CedarRequest {
  const f = input.facts;
  const { ref, refType } = splitRef(f.ref);
  // A pull request's build never counts as from a protected ref (a fork can name its branch main).
  const isPullRequest = PULL_REQUEST_EVENTS.has(f.event) || refType === "pull";
  const principal = { type: `${ns}::Actor`, id: input.actor.id };
  const resource = { type: `${ns}::Channel`, id: input.channel };
  return {
    principal,
    action: { type: `${ns}::Action`, id: "Promote" },
    resource,
    context: {
      artifact: input.artifact,
      repo: f.repo,
      ref,
      refType,
      refProtected: f.refProtected === true && !isPullRequest,
      event: f.event,
      isPullRequest,
      workflow: f.workflow,
      builderId: f.builderId,
      runnerId: f.runnerId,
      sha: f.sha ?? "",
    },
    entities: [
      { uid: principal, attrs: { roles: [...input.actor.roles] }, parents: [] },
      { uid: resource, attrs: { name: input.channel }, parents: [] },
    ],
  };
}
