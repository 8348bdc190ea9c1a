import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";
import { type KeyEncryptionKey, type RandomSource, sealBroken } from "./master-key.js";

/**
 * Envelope encryption: every object gets its own random AES-256-GCM data key, and only that data
 * key is wrapped by the key-encryption key (so a KMS sees 32 bytes per object, never the object).
 * The AAD names the record (e.g. `signing_key:<kid>`): it binds both the ciphertext and the wrapped
 * data key, so a sealed value copied into another record does not open there.
 */
interface SealedEnvelope {
  v: 1;
  /** KeyEncryptionKey.id that wrapped the data key. */
  kek: string;
  /** Wrapped data key, base64url. */
  dek: string;
  iv: string;
  ct: string;
  tag: string;
}

const dataKeyBytes = 32;
const ivBytes = 12;

/** Seals plaintext under a fresh data key; returns JSON text fit for a text column. */
export async function sealWithKek(
  kek: KeyEncryptionKey,
  plaintext: Uint8Array | string,
  aad: string,
  random: RandomSource = randomBytes,
): Promise<string> {
  const aadBytes = Buffer.from(aad, "utf8");
  const dataKey = random(dataKeyBytes);
  try {
    const iv = random(ivBytes);
    const cipher = createCipheriv("aes-256-gcm", dataKey, iv);
    cipher.setAAD(aadBytes);
    const data = typeof plaintext === "string" ? Buffer.from(plaintext, "utf8") : plaintext;
    const ct = Buffer.concat([cipher.update(data), cipher.final()]);
    const wrapped = await kek.wrap(dataKey, aadBytes);
    const sealed: SealedEnvelope = {
      v: 1,
      kek: kek.id,
      dek: Buffer.from(wrapped).toString("base64url"),
      iv: iv.toString("base64url"),
      ct: ct.toString("base64url"),
      tag: cipher.getAuthTag().toString("base64url"),
    };
    return JSON.stringify(sealed);
  } finally {
    dataKey.fill(0);
  }
}

/** Opens what sealWithKek produced, with the same AAD; throws STORE_FAILED on any mismatch. */
export async function openWithKek(kek: KeyEncryptionKey, sealed: string, aad: string): Promise<Buffer> {
  const env = parseEnvelope(sealed);
  if (env.kek !== kek.id) {
    throw sealBroken(`it was sealed under master key ${env.kek}, but the loaded master key is ${kek.id}`);
  }
  const aadBytes = Buffer.from(aad, "utf8");
  const dataKey = Buffer.from(await kek.unwrap(Buffer.from(env.dek, "base64url"), aadBytes));
  try {
    const decipher = createDecipheriv("aes-256-gcm", dataKey, Buffer.from(env.iv, "base64url"));
    decipher.setAAD(aadBytes);
    decipher.setAuthTag(Buffer.from(env.tag, "base64url"));
    try {
      return Buffer.concat([decipher.update(Buffer.from(env.ct, "base64url")), decipher.final()]);
    } catch {
      throw sealBroken("the ciphertext failed authentication");
    }
  } finally {
    dataKey.fill(0);
  }
}

function parseEnvelope(text: string): SealedEnvelope {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    throw sealBroken("it is not a sealed envelope");
  }
  const o = v as Partial<SealedEnvelope> | null;
  const b64 = (x: unknown) => typeof x === "string" && /^[A-Za-z0-9_-]*$/.test(x);
  if (
    o === null ||
    typeof o !== "object" ||
    o.v !== 1 ||
    typeof o.kek !== "string" ||
    !b64(o.dek) ||
    !b64(o.iv) ||
    !b64(o.ct) ||
    !b64(o.tag)
  ) {
    throw sealBroken("it is not a version-1 sealed envelope");
  }
  return o as SealedEnvelope;
}
