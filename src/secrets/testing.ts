/**
 * Test and bench fixtures for the secrets module: a migrated store, a master key, a real ES256
 * issuer that mints job ID tokens, and an in-memory job table for the broker's callbacks.
 * Not imported by production code.
 */
import { randomBytes } from "node:crypto";
import { exportJWK, generateKeyPair, type JSONWebKeySet } from "jose";
import { sql } from "kysely";
import type { Clock } from "../clock.js";
import { type JobClaims, type JobClaimsInput, jobClaims } from "../identity/claims.js";
import { type IdTokenPayload, mintIdToken } from "../identity/id-token.js";
import { type KeyEncryptionKey, localKek } from "../identity/master-key.js";
import type { ActiveSigningKey } from "../identity/signing-keys.js";
import { createPolicyEngine, type PolicyEngine } from "../policy/engine.js";
import { compilePolicies } from "../policy/load.js";
import type { PolicySource } from "../policy/source.js";
import { type Db, openSqlite } from "../store/database.js";
import * as secrets0006 from "../store/migrations/0006_secrets.js";
import type { BrokerDeps, JobLiveness } from "./broker.js";
import { jwksVerifier } from "./verifier.js";

/**
 * Opens a store with the secrets tables. Until store/database.ts registers 0006_secrets this
 * applies it itself; once it does, the tables are already there and this is openSqlite.
 */
export async function openSecretsDb(file = ":memory:"): Promise<Db> {
  const db = await openSqlite(file);
  const have = await sql<{
    n: number;
  }>`select count(*) as n from sqlite_master where type = 'table' and name = 'secrets'`.execute(db);
  if (have.rows[0]?.n !== 1) await secrets0006.up(db as never);
  return db;
}

export function testKek(): KeyEncryptionKey {
  return localKek(randomBytes(32));
}

/** A clock tests move by hand. */
export class FrozenClock implements Clock {
  constructor(public t: Date = new Date("2026-03-01T12:00:00.000Z")) {}
  now(): Date {
    return new Date(this.t.getTime());
  }
  advance(seconds: number): void {
    this.t = new Date(this.t.getTime() + seconds * 1000);
  }
}

export const testIssuer = "https://airlock.test";
export const brokerAudience = "https://airlock.test/secrets";

export interface JobSpec {
  repo?: string;
  ref?: string;
  refType?: "branch" | "tag";
  refProtected?: boolean;
  event?: string;
  environment?: string | null;
  runId?: string;
}

export function claimsInput(spec: JobSpec = {}): JobClaimsInput {
  const [owner, name] = (spec.repo ?? "acme/web").split("/") as [string, string];
  return {
    repository: { owner, name },
    ref: spec.ref ?? "refs/heads/main",
    refType: spec.refType ?? "branch",
    refProtected: spec.refProtected ?? true,
    sha: "0123456789abcdef0123456789abcdef01234567",
    workflow: { name: "ci", path: ".github/workflows/ci.yml" },
    run: { id: spec.runId ?? "run_test", number: 1, attempt: 1 },
    actor: "alice",
    eventName: spec.event ?? "push",
    environment: spec.environment ?? null,
  };
}

/**
 * An ES256 issuer, a policy engine, and an in-memory job table: everything the broker's deps
 * need, wired the way the server wires the real ones.
 */
export class TestIssuer {
  readonly revoked = new Set<string>();
  readonly tokenJobs = new Map<string, string>();
  readonly jobs = new Map<string, JobLiveness>();
  private constructor(
    private readonly key: ActiveSigningKey,
    readonly jwks: JSONWebKeySet,
    readonly clock: FrozenClock,
  ) {}

  static async create(clock = new FrozenClock()): Promise<TestIssuer> {
    const { publicKey, privateKey } = await generateKeyPair("ES256");
    const kid = "test-key";
    const jwk = { ...(await exportJWK(publicKey)), kid, alg: "ES256", use: "sig" };
    return new TestIssuer(
      { kid, alg: "ES256", privateKey, maxTokenLifetimeSeconds: 3600 },
      { keys: [jwk] },
      clock,
    );
  }

  /** Registers a live job and mints it a token for the broker's audience. */
  async mint(
    jobId: string,
    spec: JobSpec = {},
    opts: { audience?: string; lifetimeSeconds?: number; claims?: Partial<JobClaims> } = {},
  ): Promise<{ token: string; payload: IdTokenPayload }> {
    if (!this.jobs.has(jobId)) this.jobs.set(jobId, { live: true, endsAt: null });
    const claims = { ...jobClaims(claimsInput(spec)), ...(opts.claims ?? {}) };
    const minted = await mintIdToken(this.key, claims, {
      issuer: testIssuer,
      audience: opts.audience ?? brokerAudience,
      lifetimeSeconds: opts.lifetimeSeconds ?? 300,
      clock: this.clock,
    });
    this.tokenJobs.set(minted.payload.jti, jobId);
    return { token: minted.token, payload: minted.payload };
  }

  deps(db: Db, kek: KeyEncryptionKey, policy: PolicyEngine = defaultEngine()): BrokerDeps {
    return {
      db,
      kek,
      policy,
      audience: brokerAudience,
      verify: jwksVerifier({
        issuer: testIssuer,
        keys: this.jwks,
        clock: this.clock,
        isRevoked: (jti) => this.revoked.has(jti),
      }),
      jobForToken: async (p) => this.tokenJobs.get(p.jti) ?? null,
      jobLiveness: async ({ jobId }) => this.jobs.get(jobId) ?? { live: false },
      clock: this.clock,
    };
  }
}

let defaults: PolicyEngine | undefined;
export function defaultEngine(): PolicyEngine {
  defaults ??= createPolicyEngine(compilePolicies([]));
  return defaults;
}

export function engineWith(...sources: PolicySource[]): PolicyEngine {
  return createPolicyEngine(compilePolicies(sources));
}

/** Every row of every table, as one string: what an attacker with the database file sees. */
export async function dumpDatabase(db: Db): Promise<string> {
  const tables = await sql<{ name: string }>`select name from sqlite_master where type = 'table'`.execute(db);
  const parts: string[] = [];
  for (const { name } of tables.rows) {
    const rows = await sql.raw(`select * from "${name}"`).execute(db);
    parts.push(`${name}: ${JSON.stringify(rows.rows)}`);
  }
  return parts.join("\n");
}
