import { z } from "zod";
import { deleteSecret, listSecrets, parseSecretScope, setSecret } from "../../secrets/index.js";
import { type App, principalOf, type ServerContext } from "../context.js";

// The scope's own shape is checked by parseSecretScope, which names what is wrong with it.
const scope = z.unknown().transform((v) => parseSecretScope(v));
const setBody = z.strictObject({
  scope,
  name: z.string().min(1).max(128),
  value: z
    .string()
    .min(1)
    .max(16 * 1024),
});
const nameBody = z.strictObject({ scope, name: z.string().min(1).max(128) });
const listBody = z.strictObject({ scope: scope.optional() });

export function secretRoutes(app: App, ctx: ServerContext): void {
  const { db, kek } = ctx.controller.deps;

  app.put(
    "/secrets",
    { config: { access: "secrets:write", sensitiveBody: true }, schema: { body: setBody } },
    async (req) => setSecret(db, kek, req.body, principalOf(req).userName),
  );
  // POST, not GET: a scope is structured, and listing is an admin's act worth a body.
  app.post(
    "/secrets/list",
    { config: { access: "secrets:write" }, schema: { body: listBody } },
    async (req) => listSecrets(db, req.body.scope),
  );
  app.post(
    "/secrets/delete",
    { config: { access: "secrets:write" }, schema: { body: nameBody } },
    async (req) => {
      await deleteSecret(db, req.body, principalOf(req).userName);
      return { deleted: true };
    },
  );
}
