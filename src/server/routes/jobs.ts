import { Readable } from "node:stream";
import { z } from "zod";
import { loadJobView } from "../../controller/views.js";
import { type App, jobIdParams, principalOf, type ServerContext } from "../context.js";
import { jobLogLines } from "../log-stream.js";

const logsQuery = z.strictObject({
  after: z.coerce.number().int().min(0).optional(),
  follow: z.stringbool().optional(),
});

export function jobRoutes(app: App, ctx: ServerContext): void {
  const db = ctx.controller.db;

  app.get("/jobs/:id", { config: { access: "runs:read" }, schema: { params: jobIdParams } }, async (req) =>
    loadJobView(db, req.params.id),
  );

  app.post(
    "/jobs/:id/cancel",
    { config: { access: "runs:cancel" }, schema: { params: jobIdParams } },
    async (req, reply) => {
      await ctx.controller.cancelJob(req.params.id, principalOf(req));
      req.log.info("job cancel requested");
      return reply.code(202).send(await loadJobView(db, req.params.id));
    },
  );

  app.get(
    "/jobs/:id/logs",
    { config: { access: "runs:read" }, schema: { params: jobIdParams, querystring: logsQuery } },
    async (req, reply) => {
      // Resolve the job first so a wrong id is a proper 404, not an empty 200 stream.
      await loadJobView(db, req.params.id);
      const ended = new AbortController();
      const stop = () => ended.abort();
      // The response's close fires on completion and on a client disconnect alike; either way, and
      // on server shutdown, the follower must drop its logBus listener and poll timer.
      reply.raw.once("close", stop);
      ctx.shutdown.addEventListener("abort", stop, { once: true });
      const lines = jobLogLines(db, req.params.id, {
        afterSeq: req.query.after ?? 0,
        follow: req.query.follow ?? false,
        signal: ended.signal,
      });
      async function* ndjson() {
        try {
          for await (const line of lines) yield `${JSON.stringify(line)}\n`;
        } catch (err) {
          // Headers are gone by now; all we can do is end the stream and say why in the log.
          req.log.error({ err }, "log stream failed");
        } finally {
          ctx.shutdown.removeEventListener("abort", stop);
        }
      }
      reply.type("application/x-ndjson; charset=utf-8").header("cache-control", "no-store");
      // A follow can outlive a shutdown's idle-connection sweep; without keep-alive its socket
      // closes when the stream ends, so close() need not wait out the keep-alive timeout.
      if (req.query.follow) reply.header("connection", "close");
      return reply.send(Readable.from(ndjson(), { objectMode: false }));
    },
  );
}
