import { createCipheriv, createDecipheriv, createHash, randomBytes } from "node:crypto";
import { closeSync, fstatSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { AirlockError } from "../errors.js";

/**
 * Wraps and unwraps data keys. The local implementation below holds a master key in memory; a
 * KMS-backed one (AWS KMS Encrypt/Decrypt, Vault transit, a PKCS#11 token) fits the same shape,
 * which is why the methods are async and take only a data key and its binding.
 */
export interface KeyEncryptionKey {
  /** Names the master key, stored beside every wrapped key so a wrong key is reported as such. */
  readonly id: string;
  wrap(dataKey: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
  unwrap(wrapped: Uint8Array, aad: Uint8Array): Promise<Uint8Array>;
}

export type RandomSource = (n: number) => Buffer;

export const masterKeyBytes = 32;
export const masterKeyEnv = "AIRLOCK_MASTER_KEY";
export const masterKeyFileName = "master.key";
const ivBytes = 12;
const tagBytes = 16;

/**
 * AES-256-GCM key wrapping under a 32-byte master key. Wrapped form: iv (12) || tag (16) || ct.
 * A fresh random IV per wrap is safe here: one master key wraps far fewer than 2^32 data keys.
 */
export function localKek(masterKey: Uint8Array, random: RandomSource = randomBytes): KeyEncryptionKey {
  if (masterKey.length !== masterKeyBytes) {
    throw new AirlockError(
      "CONFIG_INVALID",
      `the master key must be ${masterKeyBytes} bytes, got ${masterKey.length}`,
    );
  }
  const key = Buffer.from(masterKey);
  // A fingerprint, not the key: a domain-separated hash, truncated, safe to store and print.
  const id = `local:${createHash("sha256").update("airlock-kek-id\0").update(key).digest("hex").slice(0, 16)}`;
  return {
    id,
    async wrap(dataKey, aad) {
      const iv = random(ivBytes);
      const cipher = createCipheriv("aes-256-gcm", key, iv);
      cipher.setAAD(aad);
      const ct = Buffer.concat([cipher.update(dataKey), cipher.final()]);
      return Buffer.concat([iv, cipher.getAuthTag(), ct]);
    },
    async unwrap(wrapped, aad) {
      if (wrapped.length <= ivBytes + tagBytes) throw sealBroken("the wrapped data key is truncated");
      const buf = Buffer.from(wrapped);
      const decipher = createDecipheriv("aes-256-gcm", key, buf.subarray(0, ivBytes));
      decipher.setAAD(aad);
      decipher.setAuthTag(buf.subarray(ivBytes, ivBytes + tagBytes));
      try {
        return Buffer.concat([decipher.update(buf.subarray(ivBytes + tagBytes)), decipher.final()]);
      } catch {
        throw sealBroken("the wrapped data key failed authentication");
      }
    },
  };
}

export function sealBroken(why: string): AirlockError {
  return new AirlockError("STORE_FAILED", `cannot open sealed data: ${why}`, {
    hint: "the record was altered, moved to another record, or sealed under another master key",
  });
}

export interface LoadMasterKeyOptions {
  /** Where `master.key` lives (created 0600 on first use). */
  dataDir: string;
  env?: NodeJS.ProcessEnv;
  random?: RandomSource;
}

/**
 * The master key from AIRLOCK_MASTER_KEY (base64 of 32 bytes) if set, else from
 * `<dataDir>/master.key`, which is created with 32 random bytes and mode 0600 on first use.
 */
export function loadMasterKey(opts: LoadMasterKeyOptions): KeyEncryptionKey {
  const env = opts.env ?? process.env;
  const random = opts.random ?? randomBytes;
  const fromEnv = env[masterKeyEnv];
  if (fromEnv !== undefined && fromEnv !== "") {
    return localKek(decodeMasterKey(fromEnv.trim(), masterKeyEnv), random);
  }
  return localKek(readOrCreateKeyFile(join(opts.dataDir, masterKeyFileName), random), random);
}

function decodeMasterKey(text: string, source: string): Buffer {
  // Buffer.from(…, "base64") also accepts base64url and ignores junk, so check the shape first.
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(text)) {
    throw new AirlockError("CONFIG_INVALID", `${source} is not base64`, {
      hint: "generate one with: head -c 32 /dev/urandom | base64",
    });
  }
  const key = Buffer.from(text, "base64");
  if (key.length !== masterKeyBytes) {
    throw new AirlockError(
      "CONFIG_INVALID",
      `${source} must decode to ${masterKeyBytes} bytes, got ${key.length}`,
      {
        hint: "generate one with: head -c 32 /dev/urandom | base64",
      },
    );
  }
  return key;
}

function readOrCreateKeyFile(file: string, random: RandomSource): Buffer {
  mkdirSync(join(file, ".."), { recursive: true, mode: 0o711 });
  try {
    // O_EXCL: two processes starting at once must not each write a different key.
    const fd = openSync(file, "wx", 0o600);
    try {
      writeSync(fd, `${random(masterKeyBytes).toString("base64")}\n`);
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") {
      throw new AirlockError(
        "CONFIG_INVALID",
        `cannot create the master key file ${file}: ${(e as Error).message}`,
        {
          cause: e,
        },
      );
    }
  }
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch (e) {
    throw new AirlockError(
      "CONFIG_INVALID",
      `cannot read the master key file ${file}: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  try {
    const mode = fstatSync(fd).mode & 0o777;
    if ((mode & 0o077) !== 0) {
      throw new AirlockError(
        "CONFIG_INVALID",
        `the master key file ${file} is readable by others (mode ${mode.toString(8)})`,
        { hint: `chmod 600 ${file}` },
      );
    }
    return decodeMasterKey(readFileSync(fd, "utf8").trim(), file);
  } finally {
    closeSync(fd);
  }
}
