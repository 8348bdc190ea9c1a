export {
  DEPLOY_SCOPES,
  hasDeployPermission,
  type PermissionLevel,
  PULL_REQUEST_EVENTS,
  permissionSet,
  type RunJobInput,
  runJobRequest,
} from "./context.js";
export { DEFAULT_POLICIES_TEXT } from "./defaults.js";
export { createPolicyEngine, type Decision, deniedError, type PolicyEngine } from "./engine.js";
export { compilePolicies, type LoadedPolicies, loadPolicies } from "./load.js";
export { sampleRunJobInput } from "./sample.js";
export { SCHEMA_TEXT } from "./schema.js";
export type { LoadedPolicy, PolicySource } from "./source.js";
