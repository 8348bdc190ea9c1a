export {
  type BrokerDeps,
  type DenialReason,
  type ExchangeContext,
  type ExchangeRequest,
  type ExchangeVia,
  exchange,
  type JobLiveness,
  type SecretDecision,
  type SecretGrant,
} from "./broker.js";
export {
  defaultLeaseTtlSeconds,
  getLease,
  isLeaseValid,
  type LeaseInfo,
  listJobLeases,
  type RevokeOptions,
  revokeJobLeases,
  revokeLease,
} from "./leases.js";
export {
  type ProvisionSecretsRequest,
  pickStepSecrets,
  type ResolvedJobSecrets,
  resolveJobSecrets,
} from "./resolve-at-provision.js";
export {
  checkSecretValue,
  lookupScopes,
  normalizeSecretName,
  orgOf,
  parseSecretScope,
  type SecretScope,
  type SecretScopeKind,
  scopeKey,
  scopeText,
} from "./scope.js";
export {
  deleteSecret,
  listSecrets,
  type SecretInfo,
  type SetSecretInput,
  type StoreOptions,
  setSecret,
} from "./store.js";
export type { SecretLeaseTable, SecretTable } from "./tables.js";
export { jwksVerifier, type TokenVerifier } from "./verifier.js";
