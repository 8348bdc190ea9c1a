export {
  claimsSupported,
  escapeSubjectValue,
  type JobClaims,
  type JobClaimsInput,
  jobClaims,
  parseSubjectCustomization,
  type SubjectCustomization,
  subject,
  subjectClaimKeys,
} from "./claims.js";
export {
  type DiscoveryDocument,
  discoveryDocument,
  discoveryPath,
  jwksPath,
  normalizeIssuer,
} from "./discovery.js";
export { openWithKek, sealWithKek } from "./envelope.js";
export {
  defaultClockToleranceSeconds,
  defaultIdTokenLifetimeSeconds,
  type IdTokenPayload,
  type IdTokenRejection,
  type IdTokenVerification,
  idTokenRejections,
  type MintedIdToken,
  type MintOptions,
  mintIdToken,
  type VerifyIdTokenOptions,
  verifyIdToken,
} from "./id-token.js";
export {
  checkIdToken,
  type IdentityIssuerDeps,
  isIdTokenRevoked,
  issueIdTokenForJob,
  parseBearer,
  revokeIdToken,
} from "./issuer.js";
export {
  type KeyEncryptionKey,
  type LoadMasterKeyOptions,
  loadMasterKey,
  localKek,
  masterKeyEnv,
  masterKeyFileName,
  type RandomSource,
} from "./master-key.js";
export {
  checkRequestToken,
  defaultRequestTokenTtlSeconds,
  type IssuedRequestToken,
  idTokenRequestPath,
  idTokenRequestUrl,
  issueRequestToken,
  jobIdentityEnv,
  type RequestTokenCheck,
  type RequestTokenRefusal,
  revokeJobTokens,
} from "./request-token.js";
export {
  type ActiveSigningKey,
  defaultMaxTokenLifetimeSeconds,
  publicationGraceSeconds,
  type SigningAlg,
  type SigningKeyInfo,
  SigningKeys,
  type SigningKeysOptions,
  signingAlgs,
} from "./signing-keys.js";
