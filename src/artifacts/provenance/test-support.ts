// Shared by provenance's tests and bench (no vitest import, so the build may include it harmlessly).
import { createHash } from "node:crypto";
import { sql } from "kysely";
import { openSqlite } from "../../store/database.js";
import { up as provenanceUp } from "../../store/migrations/0007_provenance.js";
import type { Digest } from "../store.js";
import type { ProvenanceInput } from "./statement.js";
import { type ProvenanceDb, provenanceDb } from "./tables.js";

/** A store with provenance's tables, whether or not 0007_provenance is registered yet. */
export async function provenanceTestDb(file = ":memory:"): Promise<ProvenanceDb> {
  const db = provenanceDb(await openSqlite(file));
  const found = await sql<{
    name: string;
  }>`select name from sqlite_master where type = 'table' and name = 'provenance_keys'`.execute(db);
  if (found.rows.length === 0) await provenanceUp(db as never);
  return db;
}

export const sha256 = (b: string | Uint8Array): Digest =>
  `sha256:${createHash("sha256").update(b).digest("hex")}`;

export const testBuilderId = "https://airlock.dev/builder/test";

/** The three artifacts of the fixture job, by content. */
export const fixtureArtifacts = {
  "dist/app.js": 'console.log("app");\n',
  "checksums.txt": "sums\n",
  "sbom.cdx.json": '{"bomFormat":"CycloneDX"}\n',
} as const;

/** A fixed job: the input of the golden statement. */
export function fixtureInput(overrides: Partial<ProvenanceInput> = {}): ProvenanceInput {
  return {
    builderId: testBuilderId,
    subjects: Object.entries(fixtureArtifacts).map(([name, body]) => ({ name, digest: sha256(body) })),
    repository: "https://git.example.test/acme/web",
    ref: "refs/heads/main",
    refType: "branch",
    refProtected: true,
    sha: "8d2c4ba8d2e5e0c3c48a3fd1b6fa1b9d3c7a1c0e",
    workflow: { path: ".github/workflows/release.yml", name: "Release" },
    event: "push",
    inputs: { channel: "stable", dryRun: false },
    actor: "octocat",
    environment: "production",
    run: { id: "run_aaaaaaaaaaaaaaaa", number: 42, attempt: 1 },
    job: { id: "job_bbbbbbbbbbbbbbbb", key: "build" },
    runnerId: "rnr_cccccccccccccccc",
    startedOn: "2026-11-25T08:00:00.000Z",
    finishedOn: "2026-11-25T08:01:30.250Z",
    egress: {
      mode: "enforce",
      flows: 3,
      allowed: 2,
      denied: 1,
      bytesUp: 1200,
      bytesDown: 88000,
      destinations: [
        { host: "registry.npmjs.org", port: 443, decision: "allow", flows: 2 },
        { host: "evil.example", port: 443, decision: "deny", flows: 1 },
      ],
    },
    policyDecisions: [
      { action: "RunJob", decision: "allow", policies: ["default-allow-protected-push"] },
      { action: "GetSecret", decision: "allow", policies: ["env-secrets"], resource: "NPM_TOKEN" },
    ],
    builderVersion: { airlock: "0.1.0" },
    ...overrides,
  };
}
