import type { Readable } from "node:stream";
import type { ArtifactInfo } from "../artifacts/catalog.js";
import type { Promotion } from "../artifacts/gate/index.js";
import type { AuditRecord } from "../audit/events.js";
import type { AuditQuery } from "../audit/log.js";
import type { AuditAnchor, AuditVerification } from "../audit/verify.js";
import type { IssuedToken, TokenInfo, UserInfo } from "../auth/index.js";
import type { Attestations } from "../controller/attestations.js";
import type { RunRequest } from "../controller/submit.js";
import type { Verification, VerifyRequest } from "../controller/verify.js";
import type { JobView, RunView } from "../controller/views.js";
import type { SubjectCustomization } from "../identity/index.js";
import type { LogLine } from "../logs/pipeline.js";
import type { Flow, Suggestion } from "../network/proxy/index.js";
import type { Environment, EnvironmentInput } from "../repos/environments.js";
import type { Repo } from "../repos/registry.js";
import type { SecretInfo, SecretScope, SetSecretInput } from "../secrets/index.js";

/**
 * Everything the CLI asks of Airlock. Two implementations: embedded (this process opens the store
 * and, for runs, the controller) and HTTP (a server, with an API token). Commands only see this.
 */
export interface AirlockClient {
  readonly mode: "embedded" | "server";
  submitRun(req: RunRequest): Promise<RunView>;
  getRun(runId: string): Promise<RunView>;
  listRuns(opts: { repo?: string; limit?: number }): Promise<RunView[]>;
  getJob(jobId: string): Promise<JobView>;
  /** Yields stored lines after `afterSeq`; with `follow`, keeps going until the job has finished. */
  logs(jobId: string, opts: { follow: boolean; afterSeq?: number }): AsyncIterable<LogLine>;
  cancel(id: string): Promise<void>;
  /** Resolves with the run once it has finished; `onChange` sees each intermediate state. */
  waitForRun(runId: string, onChange?: (run: RunView) => void): Promise<RunView>;
  /** Checks the chain, and that it still holds each anchor (a head exported earlier). */
  auditVerify(anchors?: AuditAnchor[]): Promise<AuditVerification>;
  /** The chain's current end, to be written down outside the database. */
  auditHead(): Promise<AuditAnchor & { at: string | null }>;
  auditList(q: AuditQuery): Promise<AuditRecord[]>;
  /** Every connection attempt a job made, oldest first. */
  egressFlows(jobId: string): Promise<Flow[]>;
  /** A proposed allowlist from the repo's audit-mode runs. */
  egressSuggest(repo: string): Promise<Suggestion[]>;
  /** Approve or reject a job waiting for its environment. */
  decideApproval(jobId: string, decision: "approved" | "rejected", comment?: string): Promise<JobView>;
  listWaitingJobs(): Promise<JobView[]>;
  putEnvironment(input: EnvironmentInput): Promise<Environment>;
  listEnvironments(repo: string): Promise<Environment[]>;
  /** Stores a secret (sealed at rest); the value never comes back. */
  setSecret(input: SetSecretInput): Promise<SecretInfo>;
  listSecrets(scope?: SecretScope): Promise<SecretInfo[]>;
  deleteSecret(input: { scope: SecretScope; name: string }): Promise<void>;
  /** Which claims make up `sub` in the repository's ID tokens (null: GitHub's default). */
  setOidcSubject(repo: string, customization: SubjectCustomization | null): Promise<Repo>;
  /** Starts signing ID tokens with a new key; the old public key stays published until its tokens expire. */
  rotateSigningKey(which?: "id-token" | "provenance"): Promise<{ created: string; retired: string | null }>;
  listArtifacts(opts: { runId?: string }): Promise<ArtifactInfo[]>;
  /** The artifact's files as a tar stream; every blob is checked against its digest on the way. */
  downloadArtifact(ref: string): Promise<{ info: ArtifactInfo; tar: Readable }>;
  /** The artifact's signed attestations (provenance, SBOM) as Sigstore bundles. */
  attestations(ref: string): Promise<Attestations>;
  /** Checks an artifact's signed provenance against what the caller expects. */
  verifyArtifact(req: VerifyRequest): Promise<Verification>;
  /** Revokes an artifact (sha256:…), a provenance key (its hint) or a runner (rnr_…); permanent. */
  revoke(input: {
    kind: "artifact" | "key" | "runner";
    subject: string;
    reason: string;
  }): Promise<{ created: boolean }>;
  /** Promotes a verified artifact to a channel if its provenance satisfies the channel's policy. */
  promote(input: { artifact: string; channel: string }): Promise<Promotion>;
  addRepo(input: {
    name: string;
    source: string;
    protectedBranches?: string[];
    protectedTags?: string[];
    egressAllow?: string[];
  }): Promise<Repo>;
  listRepos(): Promise<Repo[]>;
  createUser(input: { name: string; role: string }): Promise<UserInfo>;
  listUsers(): Promise<UserInfo[]>;
  issueToken(input: { user?: string; name: string; ttlSeconds?: number }): Promise<IssuedToken>;
  revokeToken(tokenId: string): Promise<TokenInfo>;
  close(): Promise<void>;
}
