import { z } from "zod";
import { listAudit } from "../../audit/log.js";
import { auditHead, verifyAudit } from "../../audit/verify.js";
import type { App, ServerContext } from "../context.js";

const listQuery = z.strictObject({
  run: z.string().min(1).max(64).optional(),
  job: z.string().min(1).max(64).optional(),
  type: z.string().min(1).max(64).optional(),
  after: z.coerce.number().int().min(0).optional(),
  limit: z.coerce.number().int().min(1).max(10_000).optional(),
});

const verifyBody = z
  .strictObject({
    anchors: z
      .array(
        z.strictObject({
          seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
          hash: z.string().regex(/^[0-9a-f]{64}$/, "must be 64 lowercase hex digits"),
        }),
      )
      .max(1000)
      .optional(),
  })
  // No body at all (what older clients send) is no anchors.
  .nullish();

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

  // Anchors are heads the operator exported earlier (`airlock audit head`): they catch a log
  // rewritten wholesale, hashes and all, by someone with write access to the database.
  app.post(
    "/audit/verify",
    { config: { access: "audit:verify" }, schema: { body: verifyBody } },
    async (req) => verifyAudit(db, { anchors: req.body?.anchors ?? [] }),
  );

  app.get("/audit/head", { config: { access: "audit:read" } }, async () => auditHead(db));
}
