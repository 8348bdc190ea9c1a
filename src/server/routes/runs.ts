import { z } from "zod";
import { listRunViews, loadRunView } from "../../controller/views.js";
import { type App, principalOf, runIdParams, type ServerContext } from "../context.js";

// Strict: an unknown key (notably `actor`) is refused, never ignored. The actor is the caller.
const submitBody = z.strictObject({
  repo: z.string().min(1).max(201),
  ref: z.string().min(1).max(1024),
  sha: z
    .string()
    .regex(/^[0-9a-f]{40}([0-9a-f]{24})?$/, "must be a full commit sha")
    .optional(),
  event: z.string().min(1).max(64).optional(),
  workflow: z.string().min(1).max(1024).optional(),
  inputs: z.record(z.string().max(256), z.string().max(65_536)).optional(),
});

const listQuery = z.strictObject({
  repo: z.string().min(1).max(201).optional(),
  limit: z.coerce.number().int().min(1).max(500).optional(),
});

export function runRoutes(app: App, ctx: ServerContext): void {
  const db = ctx.controller.db;

  app.post(
    "/runs",
    { config: { access: "runs:create" }, schema: { body: submitBody } },
    async (req, reply) => {
      const submitted = await ctx.controller.submit(req.body, principalOf(req));
      req.log.info({ runId: submitted.run.id, repo: req.body.repo }, "run submitted");
      return reply.code(201).send(await loadRunView(db, submitted.run.id));
    },
  );

  app.get("/runs", { config: { access: "runs:read" }, schema: { querystring: listQuery } }, async (req) =>
    listRunViews(db, req.query),
  );

  app.get("/runs/:id", { config: { access: "runs:read" }, schema: { params: runIdParams } }, async (req) =>
    loadRunView(db, req.params.id),
  );

  app.post(
    "/runs/:id/cancel",
    { config: { access: "runs:cancel" }, schema: { params: runIdParams } },
    async (req, reply) => {
      await ctx.controller.cancelRun(req.params.id, principalOf(req));
      req.log.info("run cancel requested");
      // 202: queued jobs are cancelled now, running ones when their scheduler sees the flag.
      return reply.code(202).send(await loadRunView(db, req.params.id));
    },
  );
}
