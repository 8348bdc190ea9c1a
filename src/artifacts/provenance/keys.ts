import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
} from "node:crypto";
import { appendAudit } from "../../audit/log.js";
import { type Clock, systemClock } from "../../clock.js";
import { AirlockError } from "../../errors.js";
import { openWithKek, sealWithKek } from "../../identity/envelope.js";
import type { KeyEncryptionKey, RandomSource } from "../../identity/master-key.js";
import type { Db } from "../../store/database.js";
import { type ProvenanceDb, type ProvenanceKeyTable, provenanceDb, storeExecutor } from "./tables.js";

/** The one algorithm for now; the column exists so another can be added without a migration. */
export const provenanceKeyAlg = "ecdsa-p256-sha256";
/** Sigstore's name for it (protobuf-specs PublicKeyDetails), for trust material handed to verifiers. */
export const sigstoreKeyDetails = "PKIX_ECDSA_P256_SHA_256";

/** A key that signs: its private half unsealed in memory (not extractable via the store). */
export interface ActiveProvenanceKey {
  keyid: string;
  alg: string;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

/** A key verification trusts. Retired keys stay trusted; only revocation (a separate list) ends that. */
export interface TrustedKey {
  keyid: string;
  alg: string;
  publicKey: KeyObject;
  publicKeyPem: string;
  createdAt: string;
  retiredAt: string | null;
}

export interface ProvenanceKeysOptions {
  kek: KeyEncryptionKey;
  clock?: Clock;
  random?: RandomSource;
  /** How long activeKey() trusts its cached row before re-reading the store. Default 5 s. */
  activeCacheMs?: number;
}

/** hint = sha256 hex of the SPKI DER: anyone with the public key can compute it. */
export function keyHint(publicKey: KeyObject): string {
  return createHash("sha256")
    .update(publicKey.export({ type: "spki", format: "der" }))
    .digest("hex");
}

/** The AAD that binds a sealed private key to its row. */
function keyAad(keyid: string): string {
  return `airlock:provenance_key:${keyid}`;
}

/**
 * The controller's artifact signing keys. One key is active; rotation retires it (its private
 * half is erased) and keeps its public half trusted, so provenance signed earlier still verifies.
 * The job never sees any of this: signing happens in the controller after the sandbox is gone.
 */
export class ProvenanceKeys {
  private readonly db: ProvenanceDb;
  private readonly kek: KeyEncryptionKey;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly activeCacheMs: number;
  private active: { key: ActiveProvenanceKey; readAt: number } | undefined;
  private trusted: { fingerprint: string; keys: TrustedKey[] } | undefined;

  constructor(db: Db | ProvenanceDb, opts: ProvenanceKeysOptions) {
    this.db = provenanceDb(db);
    this.kek = opts.kek;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? randomBytes;
    this.activeCacheMs = opts.activeCacheMs ?? 5000;
  }

  /** The active key's public record, creating the first key if there is none. */
  async ensureActive(actor = "system"): Promise<TrustedKey> {
    const row = await this.activeRow();
    if (row) return toTrusted(row);
    return (await this.rotate(actor)).created;
  }

  /** Creates a new active key and retires the previous one (erasing its private half), audited. */
  async rotate(actor = "system"): Promise<{ created: TrustedKey; retired: TrustedKey | null }> {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const keyid = keyHint(publicKey);
    const pkcs8 = privateKey.export({ type: "pkcs8", format: "der" });
    let sealed: string;
    try {
      sealed = await sealWithKek(this.kek, pkcs8, keyAad(keyid), this.random);
    } finally {
      pkcs8.fill(0);
    }
    const now = this.clock.now().toISOString();
    const row: ProvenanceKeyTable = {
      keyid,
      alg: provenanceKeyAlg,
      public_key: publicKey.export({ type: "spki", format: "pem" }).toString(),
      private_key: sealed,
      created_at: now,
      retired_at: null,
    };
    const retired = await this.db.transaction().execute(async (trx) => {
      const previous = await trx
        .selectFrom("provenance_keys")
        .selectAll()
        .where("retired_at", "is", null)
        .orderBy("created_at", "desc")
        .execute();
      if (previous.length > 0) {
        await trx
          .updateTable("provenance_keys")
          .set({ retired_at: now, private_key: null })
          .where("retired_at", "is", null)
          .execute();
      }
      await trx.insertInto("provenance_keys").values(row).execute();
      const first = previous[0];
      await appendAudit(
        storeExecutor(trx),
        {
          type: first ? "provenance.key_rotated" : "provenance.key_created",
          actor,
          data: { keyid, alg: provenanceKeyAlg, previousKeyids: previous.map((p) => p.keyid) },
        },
        this.clock,
      );
      return first ? { ...first, retired_at: now, private_key: null } : null;
    });
    this.active = undefined;
    this.trusted = undefined;
    return { created: toTrusted(row), retired: retired ? toTrusted(retired) : null };
  }

  /** The key to sign with. Unsealed once per key and cached; the row is re-read after activeCacheMs. */
  async activeKey(): Promise<ActiveProvenanceKey> {
    const nowMs = this.clock.now().getTime();
    if (this.active && nowMs - this.active.readAt < this.activeCacheMs) return this.active.key;
    const row = await this.activeRow();
    if (!row || row.private_key === null) {
      throw new AirlockError("CONFIG_INVALID", "there is no active provenance signing key", {
        hint: "start the server once (it creates one) or rotate the provenance key",
      });
    }
    if (this.active?.key.keyid === row.keyid) {
      this.active = { key: this.active.key, readAt: nowMs };
      return this.active.key;
    }
    const der = await openWithKek(this.kek, row.private_key, keyAad(row.keyid));
    let privateKey: KeyObject;
    try {
      privateKey = createPrivateKey({ key: der, format: "der", type: "pkcs8" });
    } finally {
      der.fill(0);
    }
    const publicKey = createPublicKey(privateKey);
    if (keyHint(publicKey) !== row.keyid) {
      throw new AirlockError("STORE_FAILED", `provenance key ${row.keyid} does not match its public half`);
    }
    const key: ActiveProvenanceKey = { keyid: row.keyid, alg: row.alg, privateKey, publicKey };
    this.active = { key, readAt: nowMs };
    return key;
  }

  /** Every key verification trusts (active and retired), newest first; revocation is applied by the verifier. */
  async trustedKeys(): Promise<TrustedKey[]> {
    const rows = await this.db
      .selectFrom("provenance_keys")
      .select(["keyid", "alg", "public_key", "created_at", "retired_at"])
      .orderBy("created_at", "desc")
      .orderBy("keyid", "desc")
      .execute();
    const fingerprint = rows.map((r) => `${r.keyid}:${r.retired_at ?? ""}`).join(",");
    if (this.trusted?.fingerprint === fingerprint) return this.trusted.keys;
    const keys = rows.map(toTrusted);
    this.trusted = { fingerprint, keys };
    return keys;
  }

  private async activeRow(): Promise<ProvenanceKeyTable | undefined> {
    return this.db
      .selectFrom("provenance_keys")
      .selectAll()
      .where("retired_at", "is", null)
      .orderBy("created_at", "desc")
      .orderBy("keyid", "desc")
      .executeTakeFirst();
  }
}

function toTrusted(row: Omit<ProvenanceKeyTable, "private_key">): TrustedKey {
  return {
    keyid: row.keyid,
    alg: row.alg,
    publicKey: createPublicKey(row.public_key),
    publicKeyPem: row.public_key,
    createdAt: row.created_at,
    retiredAt: row.retired_at,
  };
}
