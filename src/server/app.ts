import { randomUUID } from "node:crypto";
import { STATUS_CODES } from "node:http";
import type { Socket } from "node:net";
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
  type onRequestHookHandler,
} from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import { authorize, type Permission } from "../auth/index.js";
import type { Clock } from "../clock.js";
import type { Controller } from "../controller/controller.js";
import { discoveryDocument, discoveryPath, jwksPath } from "../identity/index.js";
import type { App, ServerContext } from "./context.js";
import { clientProblem, notFoundProblem, problemContentType, toProblem } from "./problem.js";
import { scrubUrl } from "./redact.js";
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
    // The request line in the log is scrubbed of anything that looks like a credential: tokens are
    // only accepted in the Authorization header, but a caller may still paste one into a URL.
    childLoggerFactory: (logger, bindings, opts) =>
      logger.child(bindings, { ...opts, serializers: { ...opts.serializers, req: requestLogView } }),
    // A URL the router cannot take apart (bad escape, overlong parameter) is still a problem
    // document, and names neither the URL nor anything in it.
    frameworkErrors: (err: FastifyError, req: FastifyRequest, reply: FastifyReply) => {
      const { problem } = toProblem(err, req);
      req.log.info({ code: problem.code, status: problem.status }, "request refused");
      return reply.code(problem.status).type(problemContentType).send(problem);
    },
    // Requests Node's parser refuses (oversized headers, bytes no header may hold, smuggling-shaped
    // framing) never reach Fastify; they still get a problem document, and nothing of the raw
    // request (which holds the Authorization header) goes to the log.
    clientErrorHandler: (err: Error & { code?: string }, socket: Socket) => writeClientError(err, socket),
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
    // API answers are for the client that asked: never sniffed as HTML, never cached by a proxy.
    // No CORS header is ever sent, so a browser page on another origin cannot read any of them.
    reply.header("x-content-type-options", "nosniff");
    if (!reply.hasHeader("cache-control")) reply.header("cache-control", "no-store");
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
        // Every Authorization header as sent: Node keeps only the first of several, and a request
        // with two is refused rather than judged by whichever one a hop in front of us preferred.
        authorizationHeader: authorizationHeaders(req),
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

/** What the log shows of a request: never its headers, and its URL scrubbed of credentials. */
function requestLogView(req: FastifyRequest) {
  return {
    method: req.method,
    url: scrubUrl(req.url),
    host: req.host,
    remoteAddress: req.ip,
    remotePort: req.socket?.remotePort,
  };
}

function writeClientError(err: Error & { code?: string }, socket: Socket): void {
  if (err.code === "ECONNRESET" || socket.destroyed) return;
  const status =
    err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
  const detail =
    status === 431
      ? "the request headers are too large"
      : status === 408
        ? "the request was not received in time"
        : "the request is not valid HTTP";
  const requestId = randomUUID();
  const body = JSON.stringify(clientProblem(status, detail, { instance: "/", requestId }));
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: ${problemContentType}\r\n` +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Request-Id: ${requestId}\r\n` +
        `X-Content-Type-Options: nosniff\r\nConnection: close\r\n\r\n${body}`,
    );
  }
  socket.destroy();
}

/** Every Authorization header of the request, from the raw header list where there is one. */
function authorizationHeaders(req: FastifyRequest): string | string[] | undefined {
  const raw = req.raw.rawHeaders as string[] | undefined;
  if (!Array.isArray(raw)) return req.headers.authorization;
  const values: string[] = [];
  for (let i = 0; i + 1 < raw.length; i += 2) {
    if (raw[i]?.toLowerCase() === "authorization") values.push(raw[i + 1] as string);
  }
  return values.length === 0 ? req.headers.authorization : values;
}
