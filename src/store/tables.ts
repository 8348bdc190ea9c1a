import type { Generated } from "kysely";

/**
 * Row shapes of every table. Timestamps are ISO-8601 text and structured values are JSON text,
 * so the same migrations and queries run on SQLite and PostgreSQL unchanged.
 */
export interface RepoTable {
  id: string;
  name: string;
  source: string;
  protected_branches: string;
  protected_tags: string;
  /** JSON array of egress allow entries every job of the repo gets. */
  egress_allow: Generated<string>;
  /** JSON SubjectCustomization for job ID tokens; null for GitHub's default `sub`. */
  oidc_subject: string | null;
  created_at: string;
}

export interface RunTable {
  id: string;
  repo_id: string;
  run_number: number;
  ref: string;
  ref_type: string;
  sha: string;
  event: string;
  actor: string;
  workflow_path: string;
  workflow_name: string;
  inputs: string;
  state: string;
  created_at: string;
  updated_at: string;
}

export interface JobTable {
  id: string;
  run_id: string;
  key: string;
  name: string;
  state: string;
  conclusion: string | null;
  needs: string;
  spec: string;
  runner_id: string | null;
  decision: string | null;
  detail: string | null;
  cancel_requested_at: string | null;
  outputs: string | null;
  /** JSON of the environment gate snapshotted at intake; null for ungated jobs. */
  gate: string | null;
  created_at: string;
  updated_at: string;
  started_at: string | null;
  finished_at: string | null;
}

export interface StepTable {
  job_id: string;
  idx: number;
  name: string;
  state: string;
  exit_code: number | null;
  started_at: string | null;
  finished_at: string | null;
}

export interface LogChunkTable {
  seq: Generated<number>;
  job_id: string;
  step_idx: number;
  stream: string;
  data: string;
  at: string;
}

export interface AuditEventTable {
  seq: number;
  id: string;
  at: string;
  type: string;
  actor: string;
  run_id: string | null;
  job_id: string | null;
  runner_id: string | null;
  data: string;
  prev_hash: string;
  hash: string;
}

export interface AuditHeadTable {
  name: string;
  seq: number;
  hash: string;
}

export interface UserTable {
  id: string;
  name: string;
  role: string;
  created_at: string;
  disabled_at: string | null;
}

export interface ApiTokenTable {
  id: string;
  user_id: string;
  name: string;
  hash: string;
  created_at: string;
  expires_at: string | null;
  revoked_at: string | null;
  last_used_at: string | null;
}

export interface ArtifactTable {
  id: string;
  run_id: string;
  job_id: string;
  name: string;
  digest: string;
  size: number;
  manifest: string;
  created_at: string;
}

export interface EgressFlowTable {
  id: string;
  job_id: string;
  run_id: string;
  runner_id: string;
  mode: string;
  host: string;
  address: string | null;
  port: number;
  protocol: string;
  bytes_up: number;
  bytes_down: number;
  started_at: string;
  duration_ms: number;
  connect_ms: number | null;
  decision: string;
  rule: string;
  error: string | null;
}

export interface EnvironmentTable {
  id: string;
  repo_id: string;
  name: string;
  branches: string;
  tags: string;
  required_approvals: number;
  approvers: string;
  prevent_self_review: number;
  wait_seconds: number;
  approval_ttl_seconds: number;
  created_at: string;
}

export interface ApprovalTable {
  id: string;
  job_id: string;
  user_id: string;
  user_name: string;
  decision: string;
  comment: string | null;
  created_at: string;
}

export interface SigningKeyTable {
  kid: string;
  alg: string;
  public_jwk: string;
  /** Sealed under the master key; null once the key has retired. */
  private_key: string | null;
  created_at: string;
  retired_at: string | null;
  expires_at: string | null;
}

export interface JobRequestTokenTable {
  hash: string;
  job_id: string;
  created_at: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface IdTokenTable {
  jti: string;
  job_id: string;
  kid: string;
  audience: string;
  subject: string;
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface SecretTable {
  scope: string;
  name: string;
  kind: string;
  org: string;
  repo: string | null;
  environment: string | null;
  /** Sealed envelope JSON, never the plaintext. */
  value: string;
  version: number;
  created_at: string;
  created_by: string;
  updated_at: string;
  updated_by: string;
}

export interface SecretLeaseTable {
  id: string;
  job_id: string;
  run_id: string;
  names: string;
  issued_at: string;
  expires_at: string;
  revoked_at: string | null;
}

export interface ProvenanceKeyTable {
  /** Key hint: sha256 hex of the public key's SPKI DER. */
  keyid: string;
  alg: string;
  /** SPKI PEM. */
  public_key: string;
  /** PKCS#8 DER sealed under the master key; null once the key has retired. */
  private_key: string | null;
  created_at: string;
  retired_at: string | null;
}

/** One signed provenance bundle per job; named by the sha256 of its JSON bytes. */
export interface ProvenanceBundleTable {
  digest: string;
  run_id: string;
  job_id: string;
  runner_id: string;
  keyid: string;
  bundle: string;
  created_at: string;
}

/** Subject digest → bundle, so `airlock verify <digest>` finds an artifact's provenance. */
export interface ProvenanceSubjectTable {
  bundle_digest: string;
  subject_digest: string;
  name: string;
}

export interface ArtifactRevocationTable {
  /** "artifact" | "key" | "runner" */
  kind: string;
  /** sha256:… digest, key id, or rnr_… runner id. */
  subject: string;
  reason: string;
  revoked_by: string;
  revoked_at: string;
}

export interface ArtifactPromotionTable {
  id: string;
  artifact_digest: string;
  channel: string;
  /** 1 promoted, 0 refused. */
  allowed: number;
  /** JSON array of the policy ids that decided. */
  policies: string;
  /** JSON array of evaluation errors (`policy-id: message`). */
  errors: string;
  /** JSON of the provenance facts the decision saw. */
  facts: string;
  promoted_by: string;
  promoted_at: string;
}

export interface Database {
  repos: RepoTable;
  runs: RunTable;
  jobs: JobTable;
  steps: StepTable;
  log_chunks: LogChunkTable;
  audit_events: AuditEventTable;
  audit_head: AuditHeadTable;
  users: UserTable;
  api_tokens: ApiTokenTable;
  artifacts: ArtifactTable;
  egress_flows: EgressFlowTable;
  environments: EnvironmentTable;
  approvals: ApprovalTable;
  signing_keys: SigningKeyTable;
  job_request_tokens: JobRequestTokenTable;
  id_tokens: IdTokenTable;
  secrets: SecretTable;
  secret_leases: SecretLeaseTable;
  provenance_keys: ProvenanceKeyTable;
  provenance_bundles: ProvenanceBundleTable;
  provenance_subjects: ProvenanceSubjectTable;
  artifact_revocations: ArtifactRevocationTable;
  artifact_promotions: ArtifactPromotionTable;
}
