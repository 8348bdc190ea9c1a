import { randomUUID } from "node:crypto";
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type onRequestHookHandler } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { authorize, type Permission } from "../auth/index.js";
import type { Clock } from "../clock.js";
import type { Controller } from "../controller/controller.js";
import { discoveryDocument, discoveryPath, jwksPath } from "../identity/index.js";
import type { App, ServerContext } from "./context.js";
import { notFoundProblem, problemContentType, toProblem } from "./problem.js";
import { approvalRoutes } from "./routes/approvals.js";
import { artifactRoutes } from "./routes/artifacts.js";
import { auditRoutes } from "./routes/audit.js";
import { egressRoutes } from "./routes/egress.js";
import { jobRoutes } from "./routes/jobs.js";
import { repoRoutes } from "./routes/repos.js";
import { runRoutes } from "./routes/runs.js";
import { secretRoutes } from "./routes/secrets.js";
import { tokenRoutes } from "./routes/tokens.js";
import { userRoutes } from "./routes/users.js";

export const apiPrefix = "/api/v1";
// Requests are small JSON documents; a workflow travels by git, never in a body.
const bodyLimitBytes = 256 * 1024;

export interface BuildAppOptions {
  controller: Controller;
  /** Decides token expiry; defaults to the controller's clock. */
  clock?: Clock;
  /** Defaults to the controller's logger. */
  logger?: FastifyBaseLogger;
}

/**
 * The HTTP API. Authorization is attached by an onRoute hook from each route's declared `access`,
 * so a route that declares nothing fails at startup instead of being served open.
 */
export function buildApp(opts: BuildAppOptions): FastifyInstance {
  const { controller } = opts;
  const clock = opts.clock ?? controller.deps.clock;
  const shutdown = new AbortController();
  const ctx: ServerContext = { controller, clock, shutdown: shutdown.signal };

  const app = Fastify({
    loggerInstance: opts.logger ?? (controller.deps.logger as FastifyBaseLogger),
    bodyLimit: bodyLimitBytes,
    // Our ids, not the caller's: a client-chosen request id could be used to forge log lines.
    genReqId: () => randomUUID(),
  }).withTypeProvider<ZodTypeProvider>() as unknown as App;

  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.decorateRequest("principal", null);

  app.addHook("onRoute", (route) => {
    const access = route.config?.access;
    if (access === undefined) {
      throw new Error(
        `route ${String(route.method)} ${route.url} declares no access (a permission or "public")`,
      );
    }
    if (access === "public") return;
    const own = route.onRequest === undefined ? [] : [route.onRequest].flat();
    route.onRequest = [authHook(ctx, access), ...own];
  });

  app.addHook("onSend", async (req, reply, payload) => {
    reply.header("x-request-id", req.id);
    return payload;
  });
  // Log streams stay open until their job ends; ending them first lets close() finish promptly.
  app.addHook("preClose", async () => shutdown.abort());

  app.setErrorHandler((err, req, reply) => {
    const { problem, internal } = toProblem(err, req);
    if (internal) req.log.error({ err }, "request failed");
    else req.log.info({ code: problem.code, status: problem.status }, "request refused");
    return reply.code(problem.status).type(problemContentType).send(problem);
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).type(problemContentType).send(notFoundProblem(req)));

  app.get("/healthz", { config: { access: "public" } }, async () => ({ ok: true }));

  // OIDC discovery and keys: public by design, read by clouds' web-identity federation.
  app.get(discoveryPath, { config: { access: "public" } }, async (_req, reply) => {
    const identity = ctx.controller.deps.identity;
    if (!identity) return reply.code(404).type(problemContentType).send(notFoundProblem(_req));
    return discoveryDocument(identity.issuer);
  });
  app.get(jwksPath, { config: { access: "public" } }, async (req, reply) => {
    const identity = ctx.controller.deps.identity;
    if (!identity) return reply.code(404).type(problemContentType).send(notFoundProblem(req));
    reply.header("cache-control", "public, max-age=60");
    return identity.keys.jwks();
  });

  app.register(
    async (api) => {
      const typed = api.withTypeProvider<ZodTypeProvider>() as unknown as App;
      runRoutes(typed, ctx);
      jobRoutes(typed, ctx);
      auditRoutes(typed, ctx);
      egressRoutes(typed, ctx);
      approvalRoutes(typed, ctx);
      artifactRoutes(typed, ctx);
      repoRoutes(typed, ctx);
      secretRoutes(typed, ctx);
      userRoutes(typed, ctx);
      tokenRoutes(typed, ctx);
    },
    { prefix: apiPrefix },
  );
  return app as unknown as FastifyInstance;
}

/**
 * Runs in onRequest, the first route-level stage: an unauthenticated caller is refused before its
 * body is read or validated, so it learns nothing about request shapes and costs no parsing.
 */
function authHook(ctx: ServerContext, permission: Permission): onRequestHookHandler {
  return async (req, reply) => {
    const principal = await authorize(
      ctx.controller.db,
      {
        authorizationHeader: req.headers.authorization,
        permission,
        route: req.routeOptions.url ?? "unknown",
        method: req.method,
        ip: req.ip,
      },
      ctx.clock,
    );
    req.principal = principal;
    // Every later line of this request names who asked and which run or job it is about.
    const log = req.log.child({ user: principal.userName, ...idsFromParams(req.params) });
    req.log = log;
    reply.log = log;
  };
}

function idsFromParams(params: unknown): { runId?: string; jobId?: string } {
  const id = (params as { id?: unknown } | undefined)?.id;
  if (typeof id !== "string") return {};
  if (id.startsWith("run_")) return { runId: id };
  if (id.startsWith("job_")) return { jobId: id };
  return {};
}
