export { byteDictionary, type Dictionary, SecretCursor, textDictionary } from "./automaton-cursor.js";
export { assertNoSecrets, type UploadContext } from "./block.js";
export {
  FileScanner,
  type ScanFile,
  type ScanResult,
  type SecretHit,
  scanFile,
  scanFiles,
  scanTarStream,
  secretsFoundError,
} from "./scan.js";
