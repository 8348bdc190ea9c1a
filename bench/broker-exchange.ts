/**
 * Secret broker exchange latency: `exchange()` end to end on a file-backed SQLite opened as the
 * controller opens it (openSqlite: WAL, synchronous=NORMAL, reused statements, checkpoints on a
 * worker thread once the store has been written to) — a real ES256 ID token from identity's issuer
 * verified against the store's JWKS with the store's revocation check, jti → job from the
 * id_tokens table, job liveness from the jobs table, a 3-secret request resolved across
 * environment, repository and organisation, three Cedar GetSecret decisions, three unseals, and
 * the lease + audit transaction. Baseline: verifying the same token alone (the crypto floor).
 */

import { randomBytes } from "node:crypto";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { appendAudit } from "../src/audit/log.js";
import { verifyIdToken } from "../src/identity/id-token.js";
import { checkIdToken, isIdTokenRevoked, issueIdTokenForJob } from "../src/identity/issuer.js";
import { localKek } from "../src/identity/master-key.js";
import { issueRequestToken } from "../src/identity/request-token.js";
import { SigningKeys } from "../src/identity/signing-keys.js";
import { createPolicyEngine, loadPolicies } from "../src/policy/index.js";
import { type BrokerDeps, exchange } from "../src/secrets/broker.js";
import { insertLease } from "../src/secrets/leases.js";
import { lookupScopes } from "../src/secrets/scope.js";
import { findSealedSecrets, openSecret, setSecret } from "../src/secrets/store.js";
import { claimsInput, openSecretsDb } from "../src/secrets/testing.js";
import { size } from "./lib/env.js";
import { row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

const issuer = "https://airlock.bench";
const audience = `${issuer}/secrets`;
const NAMES = ["DEPLOY_KEY", "NPM_TOKEN", "SLACK_WEBHOOK"];

export const brokerExchange: Bench = {
  name: "broker-exchange",
  description:
    "secret broker exchange p50/p99 (ES256 verify, 3 secrets, Cedar, lease + audit) vs verify alone",
  async run() {
    const n = size("BROKER_EXCHANGES", 2_000, 300);
    const jobsN = size("BROKER_JOBS", 50, 10);
    const warmup = 100;
    const dir = await mkdtemp(join(tmpdir(), "airlock-bench-broker-"));
    const B = "broker-exchange";
    try {
      const db = await openSecretsDb(join(dir, "airlock.db"));
      const kek = localKek(randomBytes(32));
      const keys = new SigningKeys(db, { kek, alg: "ES256" });
      await keys.ensureActive("bench");

      // One secret per scope, so every request walks the whole precedence order.
      await setSecret(
        db,
        kek,
        {
          scope: { kind: "environment", repo: "acme/web", environment: "production" },
          name: "DEPLOY_KEY",
          value: "deploy-key-value-bench",
        },
        "bench",
      );
      await setSecret(
        db,
        kek,
        { scope: { kind: "repo", repo: "acme/web" }, name: "NPM_TOKEN", value: "npm-token-value-bench" },
        "bench",
      );
      await setSecret(
        db,
        kek,
        { scope: { kind: "org", org: "acme" }, name: "SLACK_WEBHOOK", value: "slack-webhook-value-bench" },
        "bench",
      );

      // Real rows for the jobs, so liveness is a real primary-key read.
      const now = new Date().toISOString();
      await db
        .insertInto("repos")
        .values({
          id: "repo_bench",
          name: "acme/web",
          source: "/dev/null",
          protected_branches: "[]",
          protected_tags: "[]",
          created_at: now,
        })
        .execute();
      await db
        .insertInto("runs")
        .values({
          id: "run_bench",
          repo_id: "repo_bench",
          run_number: 1,
          ref: "refs/heads/main",
          ref_type: "branch",
          sha: "0".repeat(40),
          event: "push",
          actor: "bench",
          workflow_path: ".github/workflows/ci.yml",
          workflow_name: "ci",
          inputs: "{}",
          state: "running",
          created_at: now,
          updated_at: now,
        })
        .execute();
      const tokens: string[] = [];
      for (let j = 0; j < jobsN; j++) {
        const jobId = `job_bench${String(j).padStart(11, "0")}`;
        await db
          .insertInto("jobs")
          .values({
            id: jobId,
            run_id: "run_bench",
            key: "deploy",
            name: "deploy",
            state: "running",
            conclusion: null,
            needs: "[]",
            spec: "{}",
            runner_id: null,
            decision: null,
            detail: null,
            cancel_requested_at: null,
            outputs: null,
            gate: null,
            created_at: now,
            updated_at: now,
            started_at: now,
            finished_at: null,
          })
          .execute();
        const request = await issueRequestToken(db, jobId);
        const minted = await issueIdTokenForJob(
          {
            db,
            keys,
            issuer,
            claimsFor: async () => ({
              input: claimsInput({ environment: "production", runId: "run_bench" }),
            }),
            lifetimeSeconds: 3600,
          },
          { requestToken: request.token, audience },
        );
        tokens.push(minted.token);
      }

      const deps: BrokerDeps = {
        db,
        kek,
        policy: createPolicyEngine(await loadPolicies()),
        audience,
        verify: (token, aud) => checkIdToken({ db, issuer, keys }, token, aud),
        jobForToken: async (p) =>
          (await db.selectFrom("id_tokens").select("job_id").where("jti", "=", p.jti).executeTakeFirst())
            ?.job_id ?? null,
        jobLiveness: async ({ jobId }) => {
          const job = await db
            .selectFrom("jobs")
            .select(["state"])
            .where("id", "=", jobId)
            .executeTakeFirst();
          return { live: job?.state === "running" || job?.state === "provisioning", endsAt: null };
        },
      };

      const ms: number[] = [];
      for (let i = 0; i < n + warmup; i++) {
        const token = tokens[i % tokens.length] as string;
        const t0 = performance.now();
        const grant = await exchange(deps, { token, secrets: NAMES });
        const t = performance.now() - t0;
        if (
          Object.keys(grant.secrets).length !== 3 ||
          grant.secrets.DEPLOY_KEY !== "deploy-key-value-bench"
        ) {
          throw new Error("broker bench: unexpected grant");
        }
        if (i >= warmup) ms.push(t);
      }

      // Baseline: the signature and claims check alone, against the same published key set.
      const jwks = await keys.jwks();
      const base: number[] = [];
      for (let i = 0; i < n + warmup; i++) {
        const token = tokens[i % tokens.length] as string;
        const t0 = performance.now();
        const v = await verifyIdToken(token, {
          issuer,
          audience,
          keys: jwks,
          isRevoked: (jti) => isIdTokenRevoked(db, jti),
        });
        const t = performance.now() - t0;
        if (!v.ok) throw new Error(`broker bench: baseline verify failed (${v.reason})`);
        if (i >= warmup) base.push(t);
      }
      // Where the time goes: each step of an exchange alone, same store, same inputs (p50, ms).
      const phases = await measurePhases(deps, tokens, Math.min(n, 1000));
      await db.destroy();
      const sBase = summarize(base);
      return {
        rows: [
          row(B, "ES256 ID token verify + revocation read (baseline)", "ms", sBase),
          row(B, `broker exchange, 3 secrets (env/repo/org), file-backed SQLite`, "ms", summarize(ms), {
            baseline: { name: "verify alone", value: sBase.p50 },
            targets: [{ stat: "p99", op: "<=", value: 5 }],
          }),
        ],
        details: {
          slowest: ms
            .map((t, i) => [i, Math.round(t * 100) / 100])
            .sort((a, b) => (b[1] as number) - (a[1] as number))
            .slice(0, 40),
          exchanges: n,
          warmup,
          jobs: jobsN,
          secretsPerRequest: NAMES.length,
          phasesP50Ms: phases,
        },
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};

async function measurePhases(deps: BrokerDeps, tokens: string[], n: number): Promise<Record<string, number>> {
  const p50 = async (fn: (i: number) => unknown): Promise<number> => {
    const s: number[] = [];
    for (let i = 0; i < n + 50; i++) {
      const t0 = performance.now();
      await fn(i);
      if (i >= 50) s.push(performance.now() - t0);
    }
    return Math.round(summarize(s).p50 * 1000) / 1000;
  };
  const tok = (i: number) => tokens[i % tokens.length] as string;
  const payloads = await Promise.all(
    tokens.map(async (t) => {
      const v = await deps.verify(t, audience);
      if (!v.ok) throw new Error("broker bench: phase verify failed");
      return v.payload;
    }),
  );
  const pay = (i: number) => payloads[i % payloads.length] as (typeof payloads)[number];
  const scopes = lookupScopes({ repository: "acme/web", environment: "production" });
  const sealed = await findSealedSecrets(deps.db, scopes, NAMES);
  const inputs = sealed.map((s) => ({
    workload: { jobId: "job_bench", claims: pay(0) },
    secret: {
      name: s.name,
      scope: s.scope.kind,
      org: "acme",
      repo: s.scope.kind === "org" ? "" : s.scope.repo,
      environment: s.scope.kind === "environment" ? s.scope.environment : "",
    },
  }));
  return {
    verify: await p50((i) => deps.verify(tok(i), audience)),
    jobForToken: await p50((i) => deps.jobForToken(pay(i))),
    jobLiveness: await p50((i) =>
      deps.jobLiveness({
        jobId: `job_bench${String(i % tokens.length).padStart(11, "0")}`,
        runId: "run_bench",
      }),
    ),
    findSecrets: await p50(() => findSealedSecrets(deps.db, scopes, NAMES)),
    cedar3: await p50(() => {
      for (const input of inputs) deps.policy.decideGetSecret(input);
    }),
    unseal3: await p50(async () => {
      for (const s of sealed) await openSecret(deps.kek, s);
    }),
    leaseAndAuditTxn: await p50(() =>
      deps.db.transaction().execute(async (trx) => {
        await insertLease(trx, {
          jobId: "job_phase",
          runId: "run_bench",
          names: [],
          issuedAt: "",
          expiresAt: "",
        });
        await appendAudit(trx, { type: "secret.granted", actor: "job_phase", data: { phase: true } });
      }),
    ),
  };
}
