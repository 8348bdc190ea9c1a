export { findLockfiles, MAX_LOCKFILE_BYTES, readLockfile } from "./lockfiles.js";
export {
  CYCLONEDX_MEDIA_TYPE,
  CYCLONEDX_PREDICATE_TYPE,
  CYCLONEDX_SPEC_VERSION,
  integrityHashes,
  npmPurl,
  type Sbom,
  type SbomOptions,
  type SbomSubject,
  sbomFromPackageLock,
} from "./npm.js";
export { type SbomValidation, validateSbom } from "./validate.js";
