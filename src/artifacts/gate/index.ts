export {
  currentPromotion,
  listPromotions,
  type Principal,
  type PromoteDeps,
  type PromoteRequest,
  type Promotion,
  type PromotionQuery,
  promote,
  promotionDeniedError,
  type VerifiedFacts,
} from "./promote.js";
export {
  listRevocations,
  REVOCATION_KINDS,
  type Revocation,
  type RevocationKind,
  type RevocationList,
  revocationList,
  revoke,
} from "./revocations.js";
export type {
  ArtifactPromotionTable,
  ArtifactRevocationTable,
  GateDatabase,
  GateDb,
} from "./tables.js";
