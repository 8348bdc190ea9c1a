import { existsSync } from "node:fs";
import { join } from "node:path";
import type { Manifest } from "../artifacts/archive.js";
import {
  builderIdFor,
  type EgressSummary,
  type InTotoStatement,
  type PolicyDecisionSummary,
  ProvenanceKeys,
  signStatement,
  writeProvenance,
} from "../artifacts/provenance/index.js";
import { readLockfile, sbomFromPackageLock } from "../artifacts/sbom/index.js";
import type { Digest } from "../artifacts/store.js";
import { recordAudit } from "../audit/log.js";
import { instanceId } from "../config/config.js";
import type { Repo } from "../repos/registry.js";
import type { JobTable, RunTable } from "../store/tables.js";
import type { ControllerDeps } from "./deps.js";
import type { StoredJobSpec } from "./job-runner.js";

/** How provenance names a registered repository: a URI, as SLSA asks, that `--repo` matches. */
export function repositoryUri(repoName: string): string {
  return `airlock:${repoName}`;
}

export function builderId(deps: ControllerDeps): string {
  return builderIdFor(instanceId(deps.config));
}

let keysByDb = new WeakMap<object, ProvenanceKeys>();

/** The signing keys for provenance; created on first use, sealed under the master key. */
export function provenanceKeys(deps: ControllerDeps): ProvenanceKeys {
  let keys = keysByDb.get(deps.db);
  if (!keys) {
    keys = new ProvenanceKeys(deps.db, { kek: deps.kek, clock: deps.clock });
    keysByDb.set(deps.db, keys);
  }
  return keys;
}

/** Test seam: forget cached keys (a test that reopens a store). */
export function forgetProvenanceKeys(): void {
  keysByDb = new WeakMap();
}

/**
 * Publish: after a job succeeded, the controller (never the sandbox) signs SLSA provenance for
 * every artifact the job uploaded — each artifact's manifest and each of its files is a subject —
 * with the egress it used and the policy decisions that let it run as byproducts. Returns the
 * bundle's digest, or null when the job uploaded nothing.
 */
export async function publishProvenance(
  deps: ControllerDeps,
  ctx: {
    job: JobTable;
    run: RunTable;
    repo: Repo;
    runnerId: string;
    spec: StoredJobSpec;
    startedOn: Date;
    refProtected: boolean;
    workspaceDir: string;
  },
): Promise<Digest | null> {
  const artifacts = await deps.db
    .selectFrom("artifacts")
    .selectAll()
    .where("job_id", "=", ctx.job.id)
    .execute();
  if (artifacts.length === 0) return null;
  const subjects: { name: string; digest: Digest }[] = [];
  for (const a of artifacts) {
    subjects.push({ name: a.name, digest: a.digest as Digest });
    for (const f of (JSON.parse(a.manifest) as Manifest).files) {
      if (f.type === "file" && f.digest) subjects.push({ name: `${a.name}/${f.path}`, digest: f.digest });
    }
  }
  const keys = provenanceKeys(deps);
  await keys.ensureActive("controller");
  const written = await writeProvenance(
    deps.db,
    keys,
    {
      builderId: builderId(deps),
      subjects,
      repository: repositoryUri(ctx.repo.name),
      ref: ctx.run.ref,
      refType: ctx.run.ref_type === "tag" ? "tag" : "branch",
      refProtected: ctx.refProtected,
      sha: ctx.run.sha,
      workflow: { path: ctx.run.workflow_path, name: ctx.spec.workflowName },
      event: ctx.run.event,
      inputs: JSON.parse(ctx.run.inputs) as Record<string, string>,
      actor: ctx.run.actor,
      environment: ctx.spec.environment?.name ?? null,
      run: { id: ctx.run.id, number: ctx.run.run_number, attempt: 1 },
      job: { id: ctx.job.id, key: ctx.job.key },
      runnerId: ctx.runnerId,
      startedOn: ctx.startedOn,
      finishedOn: deps.clock.now(),
      egress: await egressSummary(deps, ctx.job.id, ctx.spec),
      policyDecisions: await policyDecisions(deps, ctx.job),
      builderVersion: { airlock: "0.1.0" },
    },
    deps.clock,
  );
  await attestSbom(deps, ctx, subjects, keys);
  return written.digest;
}

/**
 * The second attestation: a CycloneDX SBOM of the workspace's npm lockfile (where there is one),
 * over the same subjects, signed the same way. The lockfile is read after the steps finished,
 * as a regular file without following links, so the job cannot point it at a host file.
 */
async function attestSbom(
  deps: ControllerDeps,
  ctx: { job: JobTable; run: RunTable; runnerId: string; workspaceDir: string },
  subjects: { name: string; digest: Digest }[],
  keys: ProvenanceKeys,
): Promise<void> {
  const lockfile = join(ctx.workspaceDir, "package-lock.json");
  if (!existsSync(lockfile)) return;
  const sbom = sbomFromPackageLock(await readLockfile(lockfile), {}, { clock: deps.clock });
  const statement = {
    _type: "https://in-toto.io/Statement/v1",
    subject: subjects.map((s) => ({ name: s.name, digest: { sha256: s.digest.slice("sha256:".length) } })),
    predicateType: sbom.predicateType,
    predicate: sbom.document,
  } as unknown as InTotoStatement;
  const bundle = JSON.stringify(signStatement(statement, await keys.activeKey()));
  const stored = await deps.artifacts.put(sbom.json);
  const signed = await deps.artifacts.put(bundle);
  await recordAudit(
    deps.db,
    {
      type: "sbom.attested",
      actor: ctx.runnerId,
      runId: ctx.run.id,
      jobId: ctx.job.id,
      runnerId: ctx.runnerId,
      data: {
        sbom: stored.digest,
        bundle: signed.digest,
        components: sbom.components,
        unresolved: sbom.unresolved.length,
      },
    },
    deps.clock,
  );
}

async function egressSummary(
  deps: ControllerDeps,
  jobId: string,
  spec: StoredJobSpec,
): Promise<EgressSummary> {
  const flows = await deps.db.selectFrom("egress_flows").selectAll().where("job_id", "=", jobId).execute();
  const byDest = new Map<string, { host: string; port: number; decision: string; flows: number }>();
  for (const f of flows) {
    const key = `${f.host}:${f.port}:${f.decision}`;
    const d = byDest.get(key) ?? { host: f.host, port: Number(f.port), decision: f.decision, flows: 0 };
    d.flows++;
    byDest.set(key, d);
  }
  return {
    mode: spec.egress?.mode ?? "block",
    flows: flows.length,
    allowed: flows.filter((f) => f.decision !== "denied").length,
    denied: flows.filter((f) => f.decision === "denied").length,
    bytesUp: flows.reduce((n, f) => n + Number(f.bytes_up), 0),
    bytesDown: flows.reduce((n, f) => n + Number(f.bytes_down), 0),
    destinations: [...byDest.values()].sort((a, b) =>
      a.host === b.host ? a.port - b.port : a.host < b.host ? -1 : 1,
    ),
  };
}

async function policyDecisions(deps: ControllerDeps, job: JobTable): Promise<PolicyDecisionSummary[]> {
  const out: PolicyDecisionSummary[] = [];
  const admission = job.decision
    ? (JSON.parse(job.decision) as { allowed: boolean; reasons: string[] })
    : null;
  if (admission)
    out.push({
      action: "RunJob",
      decision: admission.allowed ? "allow" : "deny",
      policies: admission.reasons,
    });
  const grants = await deps.db
    .selectFrom("audit_events")
    .select(["type", "data"])
    .where("job_id", "=", job.id)
    .where("type", "in", ["secret.granted", "secret.denied"])
    .orderBy("seq")
    .execute();
  for (const g of grants) {
    const data = JSON.parse(g.data) as {
      decisions?: { name?: string; allowed?: boolean; policies?: string[] }[];
    };
    for (const d of data.decisions ?? []) {
      out.push({
        action: "GetSecret",
        decision: d.allowed ? "allow" : "deny",
        policies: d.policies ?? [],
        ...(d.name ? { resource: d.name } : {}),
      });
    }
  }
  return out;
}
