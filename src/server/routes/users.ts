import { z } from "zod";
import { createUser, listUsers, roles } from "../../auth/index.js";
import { type App, principalOf, type ServerContext } from "../context.js";

// createUser validates the name pattern itself; this only bounds the shape.
const createBody = z.strictObject({ name: z.string().min(1).max(64), role: z.enum(roles) });

export function userRoutes(app: App, ctx: ServerContext): void {
  const db = ctx.controller.db;

  app.post(
    "/users",
    { config: { access: "users:write" }, schema: { body: createBody } },
    async (req, reply) => {
      const user = await createUser(db, req.body, principalOf(req), { clock: ctx.clock });
      req.log.info({ userId: user.id }, "user created");
      return reply.code(201).send(user);
    },
  );

  app.get("/users", { config: { access: "users:read" } }, async (req) =>
    listUsers(db, principalOf(req), { clock: ctx.clock }),
  );
}
