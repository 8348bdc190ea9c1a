import { z } from "zod";
import { auditedDestinations, listFlows, suggestAllowlist } from "../../network/proxy/index.js";
import type { App, ServerContext } from "../context.js";

const jobParams = z.strictObject({ id: z.string().regex(/^job_[a-z2-7]{16}$/) });
const repoQuery = z.strictObject({ repo: z.string().min(3).max(201) });

export function egressRoutes(app: App, ctx: ServerContext): void {
  const db = ctx.controller.db;

  app.get(
    "/jobs/:id/flows",
    { config: { access: "runs:read" }, schema: { params: jobParams } },
    async (req) => listFlows(db, { jobId: req.params.id }),
  );

  app.get(
    "/egress/suggest",
    { config: { access: "runs:read" }, schema: { querystring: repoQuery } },
    async (req) => suggestAllowlist(await auditedDestinations(db, req.query.repo)),
  );
}
