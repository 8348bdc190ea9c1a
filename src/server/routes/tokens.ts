import { z } from "zod";
import {
  demand,
  issueToken,
  listUsers,
  maxTokenTtlSeconds,
  type Principal,
  revokeToken,
} from "../../auth/index.js";
import { AirlockError } from "../../errors.js";
import type { Db } from "../../store/database.js";
import { type App, principalOf, type ServerContext, tokenIdParams } from "../context.js";

const issueBody = z.strictObject({
  /** Whose token: a user name or usr_ id; oneself when absent. */
  user: z.string().min(1).max(64).optional(),
  name: z.string().min(1).max(64),
  ttlSeconds: z.number().int().min(1).max(maxTokenTtlSeconds).optional(),
});

export function tokenRoutes(app: App, ctx: ServerContext): void {
  const db = ctx.controller.db;

  app.post(
    "/tokens",
    { config: { access: "tokens:write-own" }, schema: { body: issueBody } },
    async (req, reply) => {
      const actor = principalOf(req);
      const userId = await resolveUser(db, actor, req.body.user, ctx);
      const issued = await issueToken(
        db,
        { userId, name: req.body.name, ttlSeconds: req.body.ttlSeconds },
        actor,
        { clock: ctx.clock },
      );
      req.log.info({ tokenId: issued.id, userId }, "token issued");
      // The one and only time the secret leaves the server; make sure nothing caches it.
      return reply.code(201).header("cache-control", "no-store").send(issued);
    },
  );

  app.delete(
    "/tokens/:id",
    { config: { access: "tokens:write-own" }, schema: { params: tokenIdParams } },
    async (req) => {
      const info = await revokeToken(db, req.params.id, principalOf(req), { clock: ctx.clock });
      req.log.info({ tokenId: info.id }, "token revoked");
      return info;
    },
  );
}

/**
 * Maps the body's `user` to an id. Another user's name is looked up only after the caller is known
 * to hold users:write, so a non-admin cannot use this route to learn which user names exist.
 * issueToken repeats the permission check on the id either way.
 */
async function resolveUser(
  db: Db,
  actor: Principal,
  user: string | undefined,
  ctx: ServerContext,
): Promise<string> {
  if (user === undefined || user === actor.userName || user === actor.userId) return actor.userId;
  await demand(db, actor, "users:write", { action: "token.issue" }, ctx.clock);
  if (/^usr_[a-z2-7]{16}$/.test(user)) return user;
  const found = (await listUsers(db, actor, { clock: ctx.clock })).find((u) => u.name === user);
  if (!found)
    throw new AirlockError("NOT_FOUND", `no user named ${user}`, {
      hint: "list users with `airlock user list`",
    });
  return found.id;
}
