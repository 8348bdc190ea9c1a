import { z } from "zod";
import { AirlockError } from "../errors.js";

/**
 * The claims of a job's ID token, named and shaped as GitHub Actions names them (every custom
 * claim is a string, booleans and numbers included), so trust policies written for GitHub work.
 */
export interface JobClaims {
  sub: string;
  repository: string;
  repository_owner: string;
  repository_id?: string;
  repository_owner_id?: string;
  repository_visibility?: string;
  ref: string;
  ref_type: string;
  ref_protected: string;
  sha: string;
  workflow: string;
  workflow_ref: string;
  workflow_sha: string;
  job_workflow_ref: string;
  job_workflow_sha: string;
  run_id: string;
  run_number: string;
  run_attempt: string;
  actor: string;
  actor_id?: string;
  event_name: string;
  environment?: string;
  runner_environment: string;
  head_ref: string;
  base_ref: string;
}

/** Every claim an ID token may carry: registered ones first, then GitHub's custom ones. */
export const claimsSupported = [
  "sub",
  "aud",
  "exp",
  "iat",
  "iss",
  "jti",
  "nbf",
  "ref",
  "sha",
  "repository",
  "repository_id",
  "repository_owner",
  "repository_owner_id",
  "repository_visibility",
  "run_id",
  "run_number",
  "run_attempt",
  "actor",
  "actor_id",
  "workflow",
  "workflow_ref",
  "workflow_sha",
  "head_ref",
  "base_ref",
  "event_name",
  "ref_type",
  "ref_protected",
  "environment",
  "job_workflow_ref",
  "job_workflow_sha",
  "runner_environment",
] as const;

export interface JobClaimsInput {
  repository: {
    owner: string;
    name: string;
    /** Immutable numeric ids, where the source knows them (required by the immutable sub form). */
    ownerId?: string | number;
    id?: string | number;
    visibility?: "public" | "private" | "internal";
  };
  /** The full ref: refs/heads/main, refs/tags/v1.2.0, refs/pull/7/merge. */
  ref: string;
  refType: "branch" | "tag";
  refProtected: boolean;
  sha: string;
  workflow: {
    /** The workflow's `name:` (or its path when it has none). */
    name: string;
    /** Path inside the repo: .github/workflows/ci.yml. */
    path: string;
    /** The ref and commit the workflow file was read at; default: the run's ref and sha. */
    ref?: string;
    sha?: string;
  };
  run: { id: string; number: number; attempt: number };
  actor: string;
  actorId?: string | number;
  eventName: string;
  environment?: string | null;
  headRef?: string | null;
  baseRef?: string | null;
  /** GitHub says github-hosted or self-hosted; an Airlock runner is self-hosted. */
  runnerEnvironment?: string;
}

/** Which claims make up `sub`, per repository (GitHub's OIDC subject customization). */
export interface SubjectCustomization {
  /** GitHub's include_claim_keys: claim names, plus `repo` and `context`; empty/absent = default. */
  includeClaimKeys?: readonly string[];
  /** The immutable form: `repo:OWNER@OWNER_ID/REPO@REPO_ID:…`, immune to a recycled name. */
  useImmutable?: boolean;
}

/** Keys include_claim_keys may name: every custom claim, plus the two composite parts. */
export const subjectClaimKeys: readonly string[] = [
  "repo",
  "context",
  ...claimsSupported.filter((c) => !["sub", "aud", "exp", "iat", "iss", "jti", "nbf"].includes(c)),
];

export const subjectCustomizationSchema = z
  .object({
    includeClaimKeys: z
      .array(
        z.string().refine((k) => subjectClaimKeys.includes(k), {
          message: `each key must be one of: ${subjectClaimKeys.join(", ")}`,
        }),
      )
      .max(subjectClaimKeys.length)
      .optional(),
    useImmutable: z.boolean().optional(),
  })
  .strict();

/** Parses a stored or submitted customization (edge input), rejecting unknown keys. */
export function parseSubjectCustomization(v: unknown): SubjectCustomization {
  const r = subjectCustomizationSchema.safeParse(v);
  if (!r.success) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `invalid OIDC subject customization: ${r.error.issues[0]?.message}`,
      {
        hint: `include_claim_keys takes: ${subjectClaimKeys.join(", ")}`,
      },
    );
  }
  return r.data;
}

/** Builds the claim set for one job; `sub` per the repository's customization (default: GitHub's). */
export function jobClaims(input: JobClaimsInput, customization: SubjectCustomization = {}): JobClaims {
  const repository = `${input.repository.owner}/${input.repository.name}`;
  const workflowRef = `${repository}/${input.workflow.path}@${input.workflow.ref ?? input.ref}`;
  const workflowSha = input.workflow.sha ?? input.sha;
  const claims: Omit<JobClaims, "sub"> = {
    repository,
    repository_owner: input.repository.owner,
    ...(input.repository.id !== undefined ? { repository_id: String(input.repository.id) } : {}),
    ...(input.repository.ownerId !== undefined
      ? { repository_owner_id: String(input.repository.ownerId) }
      : {}),
    ...(input.repository.visibility ? { repository_visibility: input.repository.visibility } : {}),
    ref: input.ref,
    ref_type: input.refType,
    ref_protected: String(input.refProtected),
    sha: input.sha,
    workflow: input.workflow.name,
    workflow_ref: workflowRef,
    workflow_sha: workflowSha,
    // Airlock has no reusable workflows, so the job's workflow is the run's workflow.
    job_workflow_ref: workflowRef,
    job_workflow_sha: workflowSha,
    run_id: input.run.id,
    run_number: String(input.run.number),
    run_attempt: String(input.run.attempt),
    actor: input.actor,
    ...(input.actorId !== undefined ? { actor_id: String(input.actorId) } : {}),
    event_name: input.eventName,
    ...(input.environment ? { environment: input.environment } : {}),
    runner_environment: input.runnerEnvironment ?? "self-hosted",
    head_ref: input.headRef ?? "",
    base_ref: input.baseRef ?? "",
  };
  return { sub: subject(claims, customization), ...claims };
}

/** GitHub writes a `:` inside a claim value as %3A, so the `:`-separated sub parses unambiguously. */
export function escapeSubjectValue(v: string): string {
  return v.replaceAll(":", "%3A");
}

type SubjectInput = Omit<JobClaims, "sub"> | JobClaims;

/**
 * The subject claim. Default (GitHub's rules, first match wins):
 *   environment set          → repo:OWNER/REPO:environment:NAME
 *   event pull_request       → repo:OWNER/REPO:pull_request
 *   otherwise                → repo:OWNER/REPO:ref:REF   (refs/heads/… or refs/tags/…)
 * With includeClaimKeys, the listed parts in order, each `key:value`; `repo` is the repo part
 * above and `context` the context part above.
 */
export function subject(claims: SubjectInput, customization: SubjectCustomization = {}): string {
  const keys = customization.includeClaimKeys;
  if (!keys || keys.length === 0) return `${repoPart(claims, customization)}:${contextPart(claims)}`;
  return keys
    .map((key) => {
      if (key === "repo") return repoPart(claims, customization);
      if (key === "context") return contextPart(claims);
      if (!subjectClaimKeys.includes(key)) {
        throw new AirlockError("CONFIG_INVALID", `include_claim_keys names an unknown claim: ${key}`);
      }
      const value = (claims as unknown as Record<string, string | undefined>)[key] ?? "";
      return `${key}:${escapeSubjectValue(value)}`;
    })
    .join(":");
}

function repoPart(claims: SubjectInput, customization: SubjectCustomization): string {
  if (!customization.useImmutable) return `repo:${escapeSubjectValue(claims.repository)}`;
  if (claims.repository_owner_id === undefined || claims.repository_id === undefined) {
    throw new AirlockError(
      "CONFIG_INVALID",
      `the immutable subject form needs the owner and repository ids of ${claims.repository}`,
      { hint: "record the repository's ids, or turn useImmutable off for this repository" },
    );
  }
  const name = claims.repository.slice(claims.repository_owner.length + 1);
  return `repo:${escapeSubjectValue(claims.repository_owner)}@${claims.repository_owner_id}/${escapeSubjectValue(name)}@${claims.repository_id}`;
}

function contextPart(claims: SubjectInput): string {
  if (claims.environment) return `environment:${escapeSubjectValue(claims.environment)}`;
  if (claims.event_name === "pull_request") return "pull_request";
  return `ref:${escapeSubjectValue(claims.ref)}`;
}
