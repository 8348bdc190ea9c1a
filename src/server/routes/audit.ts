import { z } from "zod";
import { listAudit } from "../../audit/log.js";
import { verifyAudit } from "../../audit/verify.js";
import type { App, ServerContext } from "../context.js";

const listQuery = z.strictObject({
  run: z.string().min(1).max(64).optional(),
  job: z.string().min(1).max(64).optional(),
  type: z.string().min(1).max(64).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
});

// Unbounded reads of an append-only log grow without end; callers page with `after`.
const defaultAuditLimit = 1000;

export function auditRoutes(app: App, ctx: ServerContext): void {
  const db = ctx.controller.db;

  app.get("/audit", { config: { access: "audit:read" }, schema: { querystring: listQuery } }, async (req) =>
    listAudit(db, {
      runId: req.query.run,
      jobId: req.query.job,
      type: req.query.type,
      afterSeq: req.query.after,
      limit: req.query.limit ?? defaultAuditLimit,
    }),
  );

  app.post("/audit/verify", { config: { access: "audit:verify" } }, async () => verifyAudit(db));
}
