import type { Principal } from "../auth/principal.js";
import type { RunJobInput } from "../policy/index.js";
import type { ResolvedRef } from "../repos/git-source.js";
import type { Repo } from "../repos/registry.js";
import type { JobSpec, Workflow } from "../workflow/index.js";

export interface AdmissionFacts {
  principal: Principal;
  repo: Repo;
  workflow: Workflow;
  job: JobSpec;
  jobId: string;
  event: string;
  resolved: ResolvedRef;
  refProtected: boolean;
}

export function admissionInput(f: AdmissionFacts): RunJobInput {
  return {
    actor: { id: f.principal.userName, roles: [f.principal.role] },
    repo: f.repo.name,
    job: { id: f.jobId, name: f.job.id },
    event: f.event,
    ref: f.resolved.name,
    refType: f.resolved.refType,
    refProtected: f.refProtected,
    environment: f.job.environment?.name ?? null,
    permissions: f.job.permissions,
    privileged: f.job.privileged,
    hostMounts: f.job.hostMounts,
    egress: effectiveEgress(f.job, f.repo),
    pool: f.job.runsOn.join(","),
  };
}

/**
 * The egress a job runs with: its own `egress:` plus the repository's default allowlist. A job that
 * says nothing, in a repository with no defaults, may reach nothing (mode block).
 */
export function effectiveEgress(
  job: Pick<JobSpec, "egress">,
  repo: Pick<Repo, "egressAllow">,
): { mode: "enforce" | "audit" | "block"; allow: string[] } {
  const allow = [
    ...(job.egress?.allow ?? []),
    ...repo.egressAllow.filter((a) => !job.egress?.allow.includes(a)),
  ];
  if (job.egress) return { mode: job.egress.mode, allow: job.egress.mode === "block" ? [] : allow };
  return allow.length > 0 ? { mode: "enforce", allow } : { mode: "block", allow: [] };
}
