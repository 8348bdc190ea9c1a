import { createHash, randomBytes } from "node:crypto";
import { type CryptoKey, exportJWK, generateKeyPair, importJWK, type JSONWebKeySet, type JWK } from "jose";
import { appendAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import type { Db } from "../store/database.js";
import { openWithKek, sealWithKek } from "./envelope.js";
import type { KeyEncryptionKey, RandomSource } from "./master-key.js";
import type { SigningKeyTable } from "./tables.js";

export const signingAlgs = ["ES256", "EdDSA"] as const;
export type SigningAlg = (typeof signingAlgs)[number];

export function isSigningAlg(v: unknown): v is SigningAlg {
  return typeof v === "string" && (signingAlgs as readonly string[]).includes(v);
}

/** What a signer needs: the key to sign with and the bound on token lifetime its publication allows. */
export interface ActiveSigningKey {
  kid: string;
  alg: SigningAlg;
  privateKey: CryptoKey;
  /** Tokens signed with this key must not outlive this many seconds, or the JWKS drops the key first. */
  maxTokenLifetimeSeconds: number;
}

export interface SigningKeyInfo {
  kid: string;
  alg: SigningAlg;
  publicJwk: JWK;
  createdAt: string;
  /** When the key stopped signing; null while it is the active key. */
  retiredAt: string | null;
  /** When the key leaves the JWKS; null while it is the active key. */
  expiresAt: string | null;
}

export interface SigningKeysOptions {
  kek: KeyEncryptionKey;
  clock?: Clock;
  random?: RandomSource;
  /** Algorithm of keys created from now on. */
  alg?: SigningAlg;
  /** Upper bound on any ID token's lifetime; sets how long a retired key stays published. Default 1 h. */
  maxTokenLifetimeSeconds?: number;
  /** How long activeKey() trusts its cached row before re-reading the store. Default 5 s. */
  activeCacheMs?: number;
}

export const defaultMaxTokenLifetimeSeconds = 3600;
/**
 * Added to the publication window of a retired key: covers verifiers' clock tolerance and another
 * process that still signs with a cached (just-retired) key for up to activeCacheMs.
 */
export const publicationGraceSeconds = 120;

/**
 * The issuer's signing keys. One key is active (signs); rotation retires it, erases its private
 * half, and keeps its public half in the JWKS until every token it could have signed has expired.
 */
export class SigningKeys {
  readonly alg: SigningAlg;
  readonly maxTokenLifetimeSeconds: number;
  private readonly kek: KeyEncryptionKey;
  private readonly clock: Clock;
  private readonly random: RandomSource;
  private readonly activeCacheMs: number;
  private active: { key: ActiveSigningKey; readAt: number } | undefined;
  private readonly imported = new Map<string, CryptoKey>();
  private published: { fingerprint: string; jwks: JSONWebKeySet } | undefined;

  constructor(
    private readonly db: Db,
    opts: SigningKeysOptions,
  ) {
    this.kek = opts.kek;
    this.clock = opts.clock ?? systemClock;
    this.random = opts.random ?? randomBytes;
    this.alg = opts.alg ?? "ES256";
    if (!isSigningAlg(this.alg)) {
      throw new AirlockError("CONFIG_INVALID", `signing algorithm must be one of ${signingAlgs.join(", ")}`);
    }
    this.maxTokenLifetimeSeconds = opts.maxTokenLifetimeSeconds ?? defaultMaxTokenLifetimeSeconds;
    this.activeCacheMs = opts.activeCacheMs ?? 5000;
  }

  /** All keys, newest first, including retired and unpublished ones (never private material). */
  async list(): Promise<SigningKeyInfo[]> {
    const rows = await this.db
      .selectFrom("signing_keys")
      .select(["kid", "alg", "public_jwk", "created_at", "retired_at", "expires_at"])
      .orderBy("created_at", "desc")
      .orderBy("kid", "desc")
      .execute();
    return rows.map(toInfo);
  }

  /** The active key, creating the first one if the store has none. */
  async ensureActive(actor = "system"): Promise<SigningKeyInfo> {
    const row = await this.activeRow();
    if (row) return toInfo(row);
    return (await this.rotate(actor)).created;
  }

  /**
   * Creates a new active key and retires the previous one: it stops signing now, its private key
   * is erased, and it stays in the JWKS until now + max token lifetime + grace.
   */
  async rotate(
    actor = "system",
    opts: { alg?: SigningAlg } = {},
  ): Promise<{ created: SigningKeyInfo; retired: SigningKeyInfo | null }> {
    const alg = opts.alg ?? this.alg;
    if (!isSigningAlg(alg)) {
      throw new AirlockError("REQUEST_INVALID", `signing algorithm must be one of ${signingAlgs.join(", ")}`);
    }
    const { publicKey, privateKey } = await generateKeyPair(alg, { extractable: true });
    const publicJwk = await exportJWK(publicKey);
    const kid = thumbprintKid(publicJwk);
    const pub: JWK = { ...publicJwk, kid, alg, use: "sig" };
    const priv = await exportJWK(privateKey);
    const sealed = await sealWithKek(this.kek, JSON.stringify(priv), keyAad(kid), this.random);

    const now = this.clock.now();
    const createdAt = now.toISOString();
    const expiresAt = new Date(
      now.getTime() + (this.maxTokenLifetimeSeconds + publicationGraceSeconds) * 1000,
    ).toISOString();
    const row: SigningKeyTable = {
      kid,
      alg,
      public_jwk: JSON.stringify(pub),
      private_key: sealed,
      created_at: createdAt,
      retired_at: null,
      expires_at: null,
    };
    const retired = await this.db.transaction().execute(async (trx) => {
      const t = trx;
      const previous = await t
        .selectFrom("signing_keys")
        .selectAll()
        .where("retired_at", "is", null)
        .orderBy("created_at", "desc")
        .execute();
      if (previous.length > 0) {
        await t
          .updateTable("signing_keys")
          .set({ retired_at: createdAt, expires_at: expiresAt, private_key: null })
          .where("retired_at", "is", null)
          .execute();
      }
      await t.insertInto("signing_keys").values(row).execute();
      const first = previous[0];
      await appendAudit(
        trx,
        {
          type: first ? "identity.key_rotated" : "identity.key_created",
          actor,
          data: {
            kid,
            alg,
            previousKids: previous.map((p) => p.kid),
            previousPublishedUntil: first ? expiresAt : null,
          },
        },
        this.clock,
      );
      return first ? { ...first, retired_at: createdAt, expires_at: expiresAt, private_key: null } : null;
    });
    this.active = undefined;
    this.published = undefined;
    return { created: toInfo(row), retired: retired ? toInfo(retired) : null };
  }

  /** Rotates when the active key is older than maxAgeSeconds (or there is none). */
  async rotateIfOlderThan(maxAgeSeconds: number, actor = "system"): Promise<SigningKeyInfo> {
    const row = await this.activeRow();
    if (row && this.clock.now().getTime() - Date.parse(row.created_at) < maxAgeSeconds * 1000) {
      return toInfo(row);
    }
    return (await this.rotate(actor)).created;
  }

  /**
   * The key to sign with, its private half unsealed once and kept in memory (signing is on the
   * hot path). The row is re-read after activeCacheMs, so a rotation by another process is seen.
   */
  async activeKey(): Promise<ActiveSigningKey> {
    const nowMs = this.clock.now().getTime();
    if (this.active && nowMs - this.active.readAt < this.activeCacheMs) return this.active.key;
    const row = await this.activeRow();
    if (!row || row.private_key === null) {
      throw new AirlockError("CONFIG_INVALID", "the OIDC issuer has no active signing key", {
        hint: "run `airlock server` once (it creates one) or rotate the signing key",
      });
    }
    if (!isSigningAlg(row.alg))
      throw new AirlockError("STORE_FAILED", `signing key ${row.kid} has alg ${row.alg}`);
    let privateKey = this.imported.get(row.kid);
    if (!privateKey) {
      const jwk = JSON.parse(
        (await openWithKek(this.kek, row.private_key, keyAad(row.kid))).toString("utf8"),
      ) as JWK;
      privateKey = (await importJWK(jwk, row.alg, { extractable: false })) as CryptoKey;
      this.imported.clear();
      this.imported.set(row.kid, privateKey);
    }
    const key: ActiveSigningKey = {
      kid: row.kid,
      alg: row.alg,
      privateKey,
      maxTokenLifetimeSeconds: this.maxTokenLifetimeSeconds,
    };
    this.active = { key, readAt: nowMs };
    return key;
  }

  /**
   * The published key set: the active key and every retired key not yet past its expiry. The same
   * object is returned while the set is unchanged, so verifiers can cache their imported keys.
   */
  async jwks(): Promise<JSONWebKeySet> {
    const now = this.clock.now().toISOString();
    const rows = await this.db
      .selectFrom("signing_keys")
      .select(["kid", "public_jwk", "expires_at"])
      .where((eb) => eb.or([eb("expires_at", "is", null), eb("expires_at", ">", now)]))
      .orderBy("created_at", "desc")
      .orderBy("kid", "desc")
      .execute();
    const fingerprint = rows.map((r) => r.kid).join(",");
    if (this.published?.fingerprint === fingerprint) return this.published.jwks;
    const jwks: JSONWebKeySet = { keys: rows.map((r) => JSON.parse(r.public_jwk) as JWK) };
    this.published = { fingerprint, jwks };
    return jwks;
  }

  private async activeRow(): Promise<SigningKeyTable | undefined> {
    return this.db
      .selectFrom("signing_keys")
      .selectAll()
      .where("retired_at", "is", null)
      .orderBy("created_at", "desc")
      .orderBy("kid", "desc")
      .executeTakeFirst();
  }
}

/** The AAD that binds a sealed private key to its row. */
function keyAad(kid: string): string {
  return `airlock:signing_key:${kid}`;
}

/**
 * kid = RFC 7638 thumbprint of the public key (base64url SHA-256 of its canonical members):
 * stable, unique per key, and checkable by anyone holding the public key.
 */
export function thumbprintKid(jwk: JWK): string {
  const members =
    jwk.kty === "EC"
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : jwk.kty === "OKP"
        ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x }
        : undefined;
  if (!members) throw new AirlockError("INTERNAL", `unexpected key type ${jwk.kty}`);
  return createHash("sha256").update(JSON.stringify(members)).digest("base64url");
}

function toInfo(row: Omit<SigningKeyTable, "private_key">): SigningKeyInfo {
  return {
    kid: row.kid,
    alg: row.alg as SigningAlg,
    publicJwk: JSON.parse(row.public_jwk) as JWK,
    createdAt: row.created_at,
    retiredAt: row.retired_at,
    expiresAt: row.expires_at,
  };
}
