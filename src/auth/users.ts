import { z } from "zod";
import { appendAudit } from "../audit/log.js";
import { systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import { newId } from "../ids.js";
import type { Db } from "../store/database.js";
import type { UserTable } from "../store/tables.js";
import { type AuthDeps, demand, type Principal } from "./principal.js";
import { isRole, type Role, roles } from "./roles.js";

/** The embedded CLI's identity. Reserved: nobody else may take the name, and it cannot be disabled. */
export const localAdminName = "local-admin";

export const userNamePattern = /^[a-z0-9][a-z0-9._-]{0,63}$/;

export const createUserInput = z.object({
  name: z
    .string()
    .regex(userNamePattern, "a user name is 1-64 of a-z 0-9 . _ - and starts with a letter or digit"),
  role: z.enum(roles),
});
export type CreateUserInput = z.infer<typeof createUserInput>;

export interface UserInfo {
  id: string;
  name: string;
  role: Role;
  createdAt: string;
  disabledAt: string | null;
}

export async function createUser(
  db: Db,
  input: CreateUserInput,
  actor: Principal,
  deps: AuthDeps = {},
): Promise<UserInfo> {
  const clock = deps.clock ?? systemClock;
  await demand(db, actor, "users:write", { action: "user.create" }, clock);
  const parsed = createUserInput.safeParse(input);
  if (!parsed.success) {
    throw new AirlockError("REQUEST_INVALID", parsed.error.issues.map((i) => i.message).join("; "), {
      hint: `roles are ${roles.join(", ")}`,
    });
  }
  const { name, role } = parsed.data;
  if (name === localAdminName) {
    throw new AirlockError("CONFLICT", `the user name ${localAdminName} is reserved for the embedded CLI`);
  }
  const row: UserTable = {
    id: newId("usr", deps.random),
    name,
    role,
    created_at: clock.now().toISOString(),
    disabled_at: null,
  };
  try {
    await db.transaction().execute(async (trx) => {
      await trx.insertInto("users").values(row).execute();
      await appendAudit(
        trx,
        { type: "user.created", actor: actor.userId, data: { userId: row.id, name, role } },
        clock,
      );
    });
  } catch (e) {
    if (isUniqueViolation(e)) throw new AirlockError("CONFLICT", `a user named ${name} already exists`);
    throw e;
  }
  return toUserInfo(row);
}

export async function listUsers(db: Db, actor: Principal, deps: AuthDeps = {}): Promise<UserInfo[]> {
  await demand(db, actor, "users:read", { action: "user.list" }, deps.clock);
  const rows = await db.selectFrom("users").selectAll().orderBy("name").execute();
  return rows.map(toUserInfo);
}

/**
 * Disabling (rather than deleting) keeps the user's audit trail meaningful; authentication checks
 * `disabled_at`, so the user's tokens stop working at once without being revoked one by one.
 */
export async function disableUser(
  db: Db,
  userId: string,
  actor: Principal,
  deps: AuthDeps = {},
): Promise<UserInfo> {
  const clock = deps.clock ?? systemClock;
  await demand(db, actor, "users:write", { action: "user.disable" }, clock);
  return db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom("users").selectAll().where("id", "=", userId).executeTakeFirst();
    if (!row) throw new AirlockError("NOT_FOUND", `no user ${userId}`);
    if (row.name === localAdminName) {
      // The CLI has the database file anyway; disabling its identity would only lock the operator out.
      throw new AirlockError(
        "CONFLICT",
        `${localAdminName} is the embedded CLI's identity and cannot be disabled`,
      );
    }
    if (row.disabled_at !== null) return toUserInfo(row);
    const disabledAt = clock.now().toISOString();
    await trx.updateTable("users").set({ disabled_at: disabledAt }).where("id", "=", userId).execute();
    await appendAudit(
      trx,
      { type: "user.disabled", actor: actor.userId, data: { userId, name: row.name } },
      clock,
    );
    return toUserInfo({ ...row, disabled_at: disabledAt });
  });
}

/**
 * Creates the local admin on first use and returns it as a principal. Idempotent, and safe when a
 * server and a CLI start at once: the insert ignores a conflict, and only the inserter audits.
 */
export async function ensureLocalAdmin(db: Db, deps: AuthDeps = {}): Promise<Principal> {
  const clock = deps.clock ?? systemClock;
  const row = await db.transaction().execute(async (trx) => {
    const candidate: UserTable = {
      id: newId("usr", deps.random),
      name: localAdminName,
      role: "admin",
      created_at: clock.now().toISOString(),
      disabled_at: null,
    };
    const inserted = await trx
      .insertInto("users")
      .values(candidate)
      .onConflict((oc) => oc.column("name").doNothing())
      .executeTakeFirst();
    if (Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0) {
      await appendAudit(
        trx,
        {
          type: "user.created",
          actor: candidate.id,
          data: { userId: candidate.id, name: localAdminName, role: "admin" },
        },
        clock,
      );
    }
    return trx.selectFrom("users").selectAll().where("name", "=", localAdminName).executeTakeFirstOrThrow();
  });
  // createUser reserves the name, so this only trips on a hand-edited database; refuse rather than
  // hand the CLI whatever role that row carries.
  if (row.role !== "admin" || row.disabled_at !== null) {
    throw new AirlockError("CONFLICT", `the ${localAdminName} user exists but is not an enabled admin`, {
      hint: "restore its role to admin and clear disabled_at in the users table",
    });
  }
  return { userId: row.id, userName: row.name, role: "admin", tokenId: null };
}

export function toUserInfo(row: UserTable): UserInfo {
  // A role this build does not know grants nothing; surfacing it as viewer would be a guess.
  if (!isRole(row.role)) throw new AirlockError("INTERNAL", `user ${row.id} has an unknown role`);
  return {
    id: row.id,
    name: row.name,
    role: row.role,
    createdAt: row.created_at,
    disabledAt: row.disabled_at,
  };
}

function isUniqueViolation(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  // better-sqlite3 and pg respectively.
  return code === "SQLITE_CONSTRAINT_UNIQUE" || code === "23505";
}
