import { z } from "zod";
import { provenanceKeys } from "../../controller/publish.js";
import { AirlockError } from "../../errors.js";
import { listRepos, registerRepo, setOidcSubject } from "../../repos/registry.js";
import { type App, principalOf, type ServerContext } from "../context.js";

const refPattern = z.string().min(1).max(256);

const addBody = z.strictObject({
  name: z.string().min(1).max(201),
  // A path on the server's machine; registerRepo checks it is a git repository.
  source: z.string().min(1).max(4096),
  protectedBranches: z.array(refPattern).max(100).optional(),
  protectedTags: z.array(refPattern).max(100).optional(),
  egressAllow: z.array(z.string().min(1).max(300)).max(500).optional(),
});

export function repoRoutes(app: App, ctx: ServerContext): void {
  const db = ctx.controller.db;

  app.post("/repos", { config: { access: "repos:write" }, schema: { body: addBody } }, async (req, reply) => {
    const repo = await registerRepo(db, req.body, principalOf(req).userName, ctx.clock);
    req.log.info({ repo: repo.name }, "repository registered");
    return reply.code(201).send(repo);
  });

  app.get("/repos", { config: { access: "repos:read" } }, async () => listRepos(db));

  const subjectBody = z.strictObject({ repo: z.string().min(3).max(201), customization: z.unknown() });
  app.put(
    "/repos/oidc-subject",
    { config: { access: "repos:write" }, schema: { body: subjectBody } },
    async (req) =>
      setOidcSubject(db, req.body.repo, req.body.customization ?? null, principalOf(req).userName, ctx.clock),
  );

  // Rotating the ID-token signing key is an operator's act: admin only (users:write).
  const rotateBody = z.strictObject({ which: z.enum(["id-token", "provenance"]).default("id-token") });
  app.post(
    "/identity/keys/rotate",
    { config: { access: "users:write" }, schema: { body: rotateBody } },
    async (req) => {
      if (req.body.which === "provenance") {
        const { created, retired } = await provenanceKeys(ctx.controller.deps).rotate(
          principalOf(req).userName,
        );
        return { created: created.keyid, retired: retired?.keyid ?? null };
      }
      const identity = ctx.controller.deps.identity;
      if (!identity) throw new AirlockError("SANDBOX_UNAVAILABLE", "this server does not issue ID tokens");
      const { created, retired } = await identity.keys.rotate(principalOf(req).userName);
      return { created: created.kid, retired: retired?.kid ?? null };
    },
  );
}
