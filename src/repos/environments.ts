import type { Selectable } from "kysely";
import { appendAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import { newId } from "../ids.js";
import type { Db } from "../store/database.js";
import type { EnvironmentTable } from "../store/tables.js";
import type { RefType } from "./git-source.js";
import { isProtectedRef } from "./protected-refs.js";
import { getRepo } from "./registry.js";

/** A deployment environment of a repository and the rules a job must pass to run in it. */
export interface Environment {
  id: string;
  repo: string;
  name: string;
  /** Branch and tag patterns allowed to deploy here; both empty means any ref. */
  branches: string[];
  tags: string[];
  requiredApprovals: number;
  /** Who may approve; empty means anyone with the approver role. */
  approvers: string[];
  /** The user who started a run may not approve its jobs. */
  preventSelfReview: boolean;
  /** Seconds to wait after approval (or after queueing, without approvals) before the job may run. */
  waitSeconds: number;
  /** An unapproved job is denied after this long. */
  approvalTtlSeconds: number;
  createdAt: string;
}

export interface EnvironmentInput {
  repo: string;
  name: string;
  branches?: string[];
  tags?: string[];
  requiredApprovals?: number;
  approvers?: string[];
  preventSelfReview?: boolean;
  waitSeconds?: number;
  approvalTtlSeconds?: number;
}

const envName = /^[A-Za-z0-9_.-]{1,100}$/;
const defaultApprovalTtlSeconds = 24 * 3600;

/** Creates or replaces an environment's rules; audited. */
export async function putEnvironment(
  db: Db,
  input: EnvironmentInput,
  actor: string,
  clock: Clock = systemClock,
): Promise<Environment> {
  if (!envName.test(input.name)) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `environment name "${input.name}" may hold only letters, digits, ".", "_" and "-"`,
    );
  }
  const required = input.requiredApprovals ?? 0;
  const wait = input.waitSeconds ?? 0;
  const ttl = input.approvalTtlSeconds ?? defaultApprovalTtlSeconds;
  for (const [field, value, max] of [
    ["requiredApprovals", required, 10],
    ["waitSeconds", wait, 30 * 24 * 3600],
    ["approvalTtlSeconds", ttl, 30 * 24 * 3600],
  ] as const) {
    if (!Number.isInteger(value) || value < 0 || value > max) {
      throw new AirlockError("REQUEST_INVALID", `${field} must be a whole number from 0 to ${max}`);
    }
  }
  if ((input.approvers?.length ?? 0) > 0 && (input.approvers?.length ?? 0) < required) {
    throw new AirlockError(
      "REQUEST_INVALID",
      `${required} approvals are required but only ${input.approvers?.length} approvers are named`,
    );
  }
  const repo = await getRepo(db, input.repo);
  const row: Selectable<EnvironmentTable> = {
    id: newId("env"),
    repo_id: repo.id,
    name: input.name,
    branches: JSON.stringify(input.branches ?? []),
    tags: JSON.stringify(input.tags ?? []),
    required_approvals: required,
    approvers: JSON.stringify(input.approvers ?? []),
    prevent_self_review: input.preventSelfReview ? 1 : 0,
    wait_seconds: wait,
    approval_ttl_seconds: ttl,
    created_at: clock.now().toISOString(),
  };
  return db.transaction().execute(async (trx) => {
    // Intake matches a job's `environment:` to these names case-insensitively (so `PROD` cannot
    // dodge `prod`'s rules); two names one letter-case apart would make that match ambiguous.
    const clash = (
      await trx.selectFrom("environments").select("name").where("repo_id", "=", repo.id).execute()
    ).find((e) => e.name !== input.name && e.name.toLowerCase() === input.name.toLowerCase());
    if (clash) {
      throw new AirlockError(
        "REQUEST_INVALID",
        `environment "${input.name}" differs only in letter case from the existing "${clash.name}"`,
        { hint: `update it as "${clash.name}", or remove that one first` },
      );
    }
    await trx
      .deleteFrom("environments")
      .where("repo_id", "=", repo.id)
      .where("name", "=", input.name)
      .execute();
    await trx.insertInto("environments").values(row).execute();
    const env = toEnvironment(row, repo.name);
    await appendAudit(trx, { type: "environment.updated", actor, data: { ...env } }, clock);
    return env;
  });
}

export async function listEnvironments(db: Db, repoName: string): Promise<Environment[]> {
  const repo = await getRepo(db, repoName);
  const rows = await db
    .selectFrom("environments")
    .selectAll()
    .where("repo_id", "=", repo.id)
    .orderBy("name")
    .execute();
  return rows.map((r) => toEnvironment(r, repo.name));
}

export async function findEnvironment(
  db: Db,
  repoId: string,
  repoName: string,
  name: string,
): Promise<Environment | null> {
  const row = await db
    .selectFrom("environments")
    .selectAll()
    .where("repo_id", "=", repoId)
    .where("name", "=", name)
    .executeTakeFirst();
  return row ? toEnvironment(row, repoName) : null;
}

/** Whether a ref may deploy to the environment (both pattern lists empty: any ref may). */
export function refAllowed(env: Environment, refType: RefType, name: string): boolean {
  if (env.branches.length === 0 && env.tags.length === 0) return true;
  return isProtectedRef({ branches: env.branches, tags: env.tags }, refType, name);
}

function toEnvironment(row: Selectable<EnvironmentTable>, repo: string): Environment {
  return {
    id: row.id,
    repo,
    name: row.name,
    branches: JSON.parse(row.branches) as string[],
    tags: JSON.parse(row.tags) as string[],
    requiredApprovals: row.required_approvals,
    approvers: JSON.parse(row.approvers) as string[],
    preventSelfReview: row.prevent_self_review === 1,
    waitSeconds: row.wait_seconds,
    approvalTtlSeconds: row.approval_ttl_seconds,
    createdAt: row.created_at,
  };
}
