import { resolve } from "node:path";
import type { Selectable } from "kysely";
import { appendAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import { parseSubjectCustomization, type SubjectCustomization } from "../identity/claims.js";
import { newId } from "../ids.js";
import { parseRule } from "../network/proxy/allowlist.js";
import type { Db } from "../store/database.js";
import type { RepoTable } from "../store/tables.js";
import { assertGitRepository } from "./git-source.js";
import type { ProtectionRules } from "./protected-refs.js";

export interface Repo {
  id: string;
  name: string;
  source: string;
  protection: ProtectionRules;
  /** Egress allow entries every job of this repository gets, besides its own. */
  egressAllow: string[];
  /** Which claims make up `sub` in this repository's ID tokens; null: GitHub's default. */
  oidcSubject: SubjectCustomization | null;
  createdAt: string;
}

const repoName = /^[A-Za-z0-9_.-]{1,100}\/[A-Za-z0-9_.-]{1,100}$/;

export interface RegisterRepoInput {
  name: string;
  source: string;
  protectedBranches?: string[];
  protectedTags?: string[];
  egressAllow?: string[];
}

export async function registerRepo(
  db: Db,
  input: RegisterRepoInput,
  actor: string,
  clock: Clock = systemClock,
): Promise<Repo> {
  if (!repoName.test(input.name)) {
    throw new AirlockError("REQUEST_INVALID", `repository name "${input.name}" must look like owner/name`);
  }
  const source = resolve(input.source);
  await assertGitRepository(source);
  for (const entry of input.egressAllow ?? []) {
    const parsed = parseRule(entry);
    if ("problem" in parsed) {
      throw new AirlockError("REQUEST_INVALID", `egress allow entry "${entry}": ${parsed.problem}`);
    }
  }
  const row = {
    id: newId("repo"),
    name: input.name,
    source,
    protected_branches: JSON.stringify(input.protectedBranches ?? ["main"]),
    protected_tags: JSON.stringify(input.protectedTags ?? []),
    egress_allow: JSON.stringify(input.egressAllow ?? []),
    oidc_subject: null,
    created_at: clock.now().toISOString(),
  };
  return db.transaction().execute(async (trx) => {
    const existing = await trx
      .selectFrom("repos")
      .select("id")
      .where("name", "=", input.name)
      .executeTakeFirst();
    if (existing) throw new AirlockError("CONFLICT", `repository ${input.name} is already registered`);
    await trx.insertInto("repos").values(row).execute();
    await appendAudit(
      trx,
      {
        type: "repo.registered",
        actor,
        data: { repo: row.name, source, protection: toRepo(row).protection },
      },
      clock,
    );
    return toRepo(row);
  });
}

export async function getRepo(db: Db, name: string): Promise<Repo> {
  const row = await db.selectFrom("repos").selectAll().where("name", "=", name).executeTakeFirst();
  if (!row) {
    throw new AirlockError("NOT_FOUND", `repository ${name} is not registered`, {
      hint: "register it with `airlock repo add OWNER/NAME --source PATH`",
    });
  }
  return toRepo(row);
}

/** Sets (or with null, clears) the repository's ID-token subject customization; audited. */
export async function setOidcSubject(
  db: Db,
  name: string,
  customization: unknown,
  actor: string,
  clock: Clock = systemClock,
): Promise<Repo> {
  const parsed = customization === null ? null : parseSubjectCustomization(customization);
  const repo = await getRepo(db, name);
  await db.transaction().execute(async (trx) => {
    await trx
      .updateTable("repos")
      .set({ oidc_subject: parsed ? JSON.stringify(parsed) : null })
      .where("id", "=", repo.id)
      .execute();
    await appendAudit(
      trx,
      { type: "repo.oidc_subject_set", actor, data: { repo: name, customization: parsed } },
      clock,
    );
  });
  return { ...repo, oidcSubject: parsed };
}

export async function getRepoById(db: Db, id: string): Promise<Repo> {
  const row = await db.selectFrom("repos").selectAll().where("id", "=", id).executeTakeFirst();
  if (!row) throw new AirlockError("NOT_FOUND", `repository ${id} is not registered`);
  return toRepo(row);
}

export async function listRepos(db: Db): Promise<Repo[]> {
  return (await db.selectFrom("repos").selectAll().orderBy("name").execute()).map(toRepo);
}

function toRepo(row: Selectable<RepoTable>): Repo {
  return {
    id: row.id,
    name: row.name,
    source: row.source,
    protection: { branches: JSON.parse(row.protected_branches), tags: JSON.parse(row.protected_tags) },
    egressAllow: JSON.parse(row.egress_allow) as string[],
    oidcSubject: row.oidc_subject ? (JSON.parse(row.oidc_subject) as SubjectCustomization) : null,
    createdAt: row.created_at,
  };
}
