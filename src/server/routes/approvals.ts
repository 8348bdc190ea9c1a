import { z } from "zod";
import { listWaitingJobs, loadJobView } from "../../controller/views.js";
import { listEnvironments, putEnvironment } from "../../repos/environments.js";
import { type App, jobIdParams, principalOf, type ServerContext } from "../context.js";

const decisionBody = z.strictObject({ comment: z.string().max(2000).optional() });
const refPattern = z.string().min(1).max(200);
const environmentBody = z.strictObject({
  repo: z.string().min(3).max(201),
  name: z.string().min(1).max(100),
  branches: z.array(refPattern).max(100).optional(),
  tags: z.array(refPattern).max(100).optional(),
  requiredApprovals: z.number().int().min(0).max(10).optional(),
  approvers: z.array(z.string().min(1).max(64)).max(50).optional(),
  preventSelfReview: z.boolean().optional(),
  waitSeconds: z.number().int().min(0).optional(),
  approvalTtlSeconds: z.number().int().min(0).optional(),
});
const repoQuery = z.strictObject({ repo: z.string().min(3).max(201) });

export function approvalRoutes(app: App, ctx: ServerContext): void {
  const db = ctx.controller.db;

  for (const [path, decision] of [
    ["/jobs/:id/approve", "approved"],
    ["/jobs/:id/reject", "rejected"],
  ] as const) {
    app.post(
      path,
      { config: { access: "jobs:approve" }, schema: { params: jobIdParams, body: decisionBody.optional() } },
      async (req) => {
        await ctx.controller.decideApproval(req.params.id, principalOf(req), decision, req.body?.comment);
        return loadJobView(db, req.params.id);
      },
    );
  }

  app.get("/approvals", { config: { access: "runs:read" } }, async () => listWaitingJobs(db));

  app.put(
    "/environments",
    { config: { access: "repos:write" }, schema: { body: environmentBody } },
    async (req) => putEnvironment(db, req.body, principalOf(req).userName),
  );

  app.get(
    "/environments",
    { config: { access: "repos:read" }, schema: { querystring: repoQuery } },
    async (req) => listEnvironments(db, req.query.repo),
  );
}
