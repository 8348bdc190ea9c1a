/**
 * The encrypted secret store: set, list, delete (for the CLI and API) and the broker's internal
 * reads. Every value is sealed with the identity module's envelope (a fresh AES-256-GCM data key
 * per value, wrapped by the master key) under an AAD naming its scope and name. Values never
 * leave this file except through readSecretValues/openSecret, which only the broker calls; every
 * change is audited in its own transaction, without the value.
 */
import { randomBytes } from "node:crypto";
import { appendAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import { openWithKek, sealWithKek } from "../identity/envelope.js";
import type { KeyEncryptionKey, RandomSource } from "../identity/master-key.js";
import {
  checkSecretValue,
  normalizeSecretName,
  parseSecretScope,
  type SecretScope,
  scopeKey,
  scopeOrg,
  scopeText,
  secretAad,
} from "./scope.js";
import { type Executor, inTransaction, type SecretTable } from "./tables.js";

/** What list shows about a secret: never its value. */
export interface SecretInfo {
  name: string;
  scope: SecretScope;
  version: number;
  createdAt: string;
  createdBy: string;
  updatedAt: string;
  updatedBy: string;
}

export interface SetSecretInput {
  scope: SecretScope;
  name: string;
  value: string;
}

export interface StoreOptions {
  clock?: Clock;
  random?: RandomSource;
}

/**
 * Creates or replaces a secret (the version counts replacements from 1). Names are case-insensitive
 * and stored upper case; values shorter than MIN_SECRET_LENGTH are refused with an error that
 * names the secret, never the value.
 */
export async function setSecret(
  db: Executor,
  kek: KeyEncryptionKey,
  input: SetSecretInput,
  actor: string,
  opts: StoreOptions = {},
): Promise<SecretInfo> {
  const scope = parseSecretScope(input.scope);
  const name = normalizeSecretName(input.name);
  checkSecretValue(name, input.value);
  const clock = opts.clock ?? systemClock;
  const sealed = await sealWithKek(kek, input.value, secretAad(scope, name), opts.random ?? randomBytes);
  const key = scopeKey(scope);
  const now = clock.now().toISOString();
  return inTransaction(db, async (trx) => {
    const t = trx;
    const prior = await t
      .selectFrom("secrets")
      .select(["version", "created_at", "created_by"])
      .where("scope", "=", key)
      .where("name", "=", name)
      .executeTakeFirst();
    const version = prior ? Number(prior.version) + 1 : 1;
    if (prior) {
      const r = await t
        .updateTable("secrets")
        .set({ value: sealed, version, updated_at: now, updated_by: actor })
        .where("scope", "=", key)
        .where("name", "=", name)
        .where("version", "=", prior.version)
        .executeTakeFirst();
      // Only PostgreSQL can get here: another writer replaced it between our read and write.
      if (Number(r.numUpdatedRows) !== 1) {
        throw new AirlockError("CONFLICT", `secret ${name} in ${scopeText(scope)} changed while being set`, {
          hint: "try again",
        });
      }
    } else {
      await t
        .insertInto("secrets")
        .values({
          scope: key,
          name,
          kind: scope.kind,
          org: scopeOrg(scope),
          repo: scope.kind === "org" ? null : scope.repo,
          environment: scope.kind === "environment" ? scope.environment : null,
          value: sealed,
          version,
          created_at: now,
          created_by: actor,
          updated_at: now,
          updated_by: actor,
        })
        .execute();
    }
    await appendAudit(
      trx,
      { type: prior ? "secret.updated" : "secret.created", actor, data: { scope: key, name, version } },
      clock,
    );
    return {
      name,
      scope,
      version,
      createdAt: prior?.created_at ?? now,
      createdBy: prior?.created_by ?? actor,
      updatedAt: now,
      updatedBy: actor,
    };
  });
}

/**
 * Metadata of the secrets in one scope, or of every secret; sorted by scope then name. The value
 * column is never selected.
 */
export async function listSecrets(db: Executor, scope?: SecretScope): Promise<SecretInfo[]> {
  let q = db
    .selectFrom("secrets")
    .select([
      "scope",
      "name",
      "kind",
      "org",
      "repo",
      "environment",
      "version",
      "created_at",
      "created_by",
      "updated_at",
      "updated_by",
    ])
    .orderBy("scope")
    .orderBy("name");
  if (scope) q = q.where("scope", "=", scopeKey(parseSecretScope(scope)));
  const rows = await q.execute();
  return rows.map((r) => ({
    name: r.name,
    scope: rowScope(r),
    version: Number(r.version),
    createdAt: r.created_at,
    createdBy: r.created_by,
    updatedAt: r.updated_at,
    updatedBy: r.updated_by,
  }));
}

/** Deletes a secret; NOT_FOUND if there is none. Leases already granted keep their values. */
export async function deleteSecret(
  db: Executor,
  input: { scope: SecretScope; name: string },
  actor: string,
  opts: { clock?: Clock } = {},
): Promise<void> {
  const scope = parseSecretScope(input.scope);
  const name = normalizeSecretName(input.name);
  const key = scopeKey(scope);
  await inTransaction(db, async (trx) => {
    const gone = await trx
      .deleteFrom("secrets")
      .where("scope", "=", key)
      .where("name", "=", name)
      .returning("version")
      .executeTakeFirst();
    if (!gone) {
      throw new AirlockError("NOT_FOUND", `no secret ${name} in ${scopeText(scope)}`, {
        hint: "list the scope's secrets to see their names",
      });
    }
    await appendAudit(
      trx,
      { type: "secret.deleted", actor, data: { scope: key, name, version: Number(gone.version) } },
      opts.clock ?? systemClock,
    );
  });
}

/** A stored secret as the broker sees it before deciding: metadata plus the still-sealed value. */
export interface SealedSecret {
  name: string;
  scope: SecretScope;
  version: number;
  sealed: string;
}

/**
 * Internal (broker only): every stored secret among `names` in any of `scopes`, still sealed.
 * One query over the primary key, whatever the number of names and scopes.
 */
export async function findSealedSecrets(
  db: Executor,
  scopes: readonly SecretScope[],
  names: readonly string[],
): Promise<SealedSecret[]> {
  if (scopes.length === 0 || names.length === 0) return [];
  const rows = await db
    .selectFrom("secrets")
    .select(["scope", "name", "kind", "org", "repo", "environment", "version", "value"])
    .where("scope", "in", scopes.map(scopeKey))
    .where("name", "in", [...names])
    .execute();
  return rows.map((r) => ({ name: r.name, scope: rowScope(r), version: Number(r.version), sealed: r.value }));
}

/** Internal (broker only): opens a sealed value, checking that it belongs to this scope and name. */
export async function openSecret(kek: KeyEncryptionKey, s: SealedSecret): Promise<string> {
  return (await openWithKek(kek, s.sealed, secretAad(s.scope, s.name))).toString("utf8");
}

/**
 * Internal (broker only): the values of `names` in exactly one scope. Absent names are absent
 * from the map. Callers outside the broker must go through a policy decision instead.
 */
export async function readSecretValues(
  db: Executor,
  kek: KeyEncryptionKey,
  scope: SecretScope,
  names: readonly string[],
): Promise<Map<string, string>> {
  const found = await findSealedSecrets(db, [parseSecretScope(scope)], names.map(normalizeSecretName));
  const out = new Map<string, string>();
  for (const s of found) out.set(s.name, await openSecret(kek, s));
  return out;
}

type ScopeColumns = Pick<SecretTable, "kind" | "org" | "repo" | "environment" | "scope">;

function rowScope(r: ScopeColumns): SecretScope {
  if (r.kind === "org") return { kind: "org", org: r.org };
  if (r.kind === "repo" && r.repo !== null) return { kind: "repo", repo: r.repo };
  if (r.kind === "environment" && r.repo !== null && r.environment !== null) {
    return { kind: "environment", repo: r.repo, environment: r.environment };
  }
  throw new AirlockError("STORE_FAILED", `secret row ${r.scope} has an inconsistent scope`);
}
