// Shared by identity's tests only (no vitest import, so the build may include it harmlessly).
import { randomBytes } from "node:crypto";
import { sql } from "kysely";
import type { Clock } from "../clock.js";
import { type Db, openSqlite } from "../store/database.js";
import { up as identityUp } from "../store/migrations/0004_identity.js";
import type { JobClaimsInput } from "./claims.js";
import { localKek } from "./master-key.js";

/** An in-memory store with identity's tables, whether or not 0004_identity is registered yet. */
export async function identityDb(): Promise<Db> {
  const db = await openSqlite(":memory:");
  const found = await sql<{
    name: string;
  }>`select name from sqlite_master where type = 'table' and name = 'signing_keys'`.execute(db);
  if (found.rows.length === 0) await identityUp(db as never);
  return db;
}

export interface FrozenClock extends Clock {
  set(iso: string | number): void;
  advance(seconds: number): void;
}

export function frozenClock(start = "2026-11-25T08:00:00.000Z"): FrozenClock {
  let t = Date.parse(start);
  return {
    now: () => new Date(t),
    set: (v) => {
      t = typeof v === "number" ? v : Date.parse(v);
    },
    advance: (s) => {
      t += s * 1000;
    },
  };
}

export const testKek = () => localKek(randomBytes(32));

export function pushInput(overrides: Partial<JobClaimsInput> = {}): JobClaimsInput {
  return {
    repository: { owner: "octo-org", name: "octo-repo" },
    ref: "refs/heads/main",
    refType: "branch",
    refProtected: true,
    sha: "8d2c4ba8d2e5e0c3c48a3fd1b6fa1b9d3c7a1c0e",
    workflow: { name: "CI", path: ".github/workflows/ci.yml" },
    run: { id: "run_abcdefghijklmnop", number: 42, attempt: 1 },
    actor: "octocat",
    eventName: "push",
    ...overrides,
  };
}
