import type { Clock } from "../clock.js";
import type { Config } from "../config/config.js";
import {
  type JobClaimsInput,
  type KeyEncryptionKey,
  normalizeIssuer,
  SigningKeys,
  type SubjectCustomization,
} from "../identity/index.js";
import { isProtectedRef } from "../repos/protected-refs.js";
import { getRepoById } from "../repos/registry.js";
import type { Db } from "../store/database.js";
import type { StoredJobSpec } from "./job-runner.js";
import { getJobRow, getRunRow } from "./job-store.js";

/** The controller's identity material: the master key, the signing keys, the issuer URL. */
export interface ControllerIdentity {
  kek: KeyEncryptionKey;
  keys: SigningKeys;
  issuer: string;
}

export async function openIdentity(
  db: Db,
  kek: KeyEncryptionKey,
  config: Config,
  clock: Clock,
): Promise<ControllerIdentity> {
  const keys = new SigningKeys(db, {
    kek,
    clock,
    maxTokenLifetimeSeconds: config.identity.tokenLifetimeSeconds,
  });
  await keys.ensureActive("controller");
  return { kek, keys, issuer: normalizeIssuer(config.identity.issuer) };
}

const pullRequestEvents = new Set(["pull_request", "pull_request_target"]);

/** A job's claims and its repository's `sub` customization, as the issuer asks for them. */
export async function tokenClaimsFor(
  db: Db,
  jobId: string,
): Promise<{ input: JobClaimsInput; customization?: SubjectCustomization }> {
  const input = await claimsInputFor(db, jobId);
  const job = await getJobRow(db, jobId);
  const run = await getRunRow(db, job.run_id);
  const repo = await getRepoById(db, run.repo_id);
  return repo.oidcSubject ? { input, customization: repo.oidcSubject } : { input };
}

/** What a job's ID token says about it, read from the store (never from the job). */
export async function claimsInputFor(db: Db, jobId: string): Promise<JobClaimsInput> {
  const job = await getJobRow(db, jobId);
  const run = await getRunRow(db, job.run_id);
  const repo = await getRepoById(db, run.repo_id);
  const spec = JSON.parse(job.spec) as StoredJobSpec;
  const [owner = "", name = ""] = repo.name.split("/");
  const shortRef = run.ref.replace(/^refs\/(heads|tags)\//, "");
  const refType = run.ref_type === "tag" ? "tag" : "branch";
  return {
    repository: { owner, name },
    ref: run.ref,
    refType,
    // A fork can name its branch main: pull-request runs never count as protected.
    refProtected: !pullRequestEvents.has(run.event) && isProtectedRef(repo.protection, refType, shortRef),
    sha: run.sha,
    workflow: { name: spec.workflowName, path: run.workflow_path },
    run: { id: run.id, number: run.run_number, attempt: 1 },
    actor: run.actor,
    eventName: run.event,
    environment: spec.environment?.name ?? null,
    runnerEnvironment: "self-hosted",
  };
}
