export type { AddMaskEvent } from "./add-mask.js";
export type { CredentialKind, Detection } from "./credentials.js";
export { createMasker, type MaskerOptions, maskFolded, maskText } from "./masker.js";
export { MASK } from "./needle-stream.js";
export {
  deriveNeedles,
  MAX_SECRET_LENGTH,
  MIN_SECRET_LENGTH,
  type Needle,
  type NeedleVariant,
} from "./needles.js";
export { SecretSet } from "./secret-set.js";
