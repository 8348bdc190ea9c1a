export {
  bundleMediaTypeV03,
  parseBundle,
  type SigstoreBundle,
  signStatement,
  statementPayload,
  toBundle,
} from "./bundle.js";
export { type DsseEnvelope, inTotoPayloadType, pae, signEnvelope, verifyEnvelopeSignature } from "./dsse.js";
export {
  type ActiveProvenanceKey,
  keyHint,
  ProvenanceKeys,
  type ProvenanceKeysOptions,
  provenanceKeyAlg,
  sigstoreKeyDetails,
  type TrustedKey,
} from "./keys.js";
export { findProvenance, type StoredProvenance, type WrittenProvenance, writeProvenance } from "./publish.js";
export {
  type InTotoStatement,
  type ResourceDescriptor,
  slsaProvenanceV1,
  statementTypeV1,
  validateStatement,
} from "./schema.js";
export {
  type AirlockProvenance,
  airlockBuildType,
  builderIdBase,
  builderIdFor,
  buildStatement,
  type EgressSummary,
  egressByproductName,
  type PolicyDecisionSummary,
  type ProvenanceInput,
  policyByproductName,
  readAirlockProvenance,
  readByproduct,
} from "./statement.js";
export type { ProvenanceDb, ProvenanceKeyTable } from "./tables.js";
export {
  type ArtifactRef,
  type Revocations,
  type VerifyExpectations,
  type VerifyFailureReason,
  type VerifyOptions,
  type VerifyResult,
  verifyArtifact,
} from "./verify.js";
