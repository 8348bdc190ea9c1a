export {
  DEPLOY_SCOPES,
  type GetSecretInput,
  getSecretRequest,
  hasDeployPermission,
  type PermissionLevel,
  type PromoteInput,
  type PromotionFacts,
  PULL_REQUEST_EVENTS,
  permissionSet,
  promoteRequest,
  type RunJobInput,
  runJobRequest,
  type SecretScopeKind,
  secretEntityId,
  splitRef,
  WORKLOAD_CLAIM_NAMES,
  type WorkloadClaims,
} from "./context.js";
export { DEFAULT_POLICIES_TEXT } from "./defaults.js";
export { createPolicyEngine, type Decision, deniedError, type PolicyEngine } from "./engine.js";
export { compilePolicies, type LoadedPolicies, loadPolicies } from "./load.js";
export {
  sampleGetSecretInput,
  samplePromoteInput,
  sampleRunJobInput,
  sampleWorkloadClaims,
} from "./sample.js";
export { SCHEMA_TEXT } from "./schema.js";
export type { LoadedPolicy, PolicySource } from "./source.js";
