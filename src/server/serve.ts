import type { FastifyInstance } from "fastify";
import type { Config } from "../config/config.js";
import { Controller } from "../controller/controller.js";
import { buildApp } from "./app.js";
import { isLoopbackHost } from "./loopback.js";

export interface StartServerOptions {
  config: Config;
  /** Overrides config.server.host (default 127.0.0.1). */
  host?: string;
  /** Overrides config.server.port (default 8480; 0 picks a free port). */
  port?: number;
  /** Install SIGINT/SIGTERM handlers that close the server (default true; tests pass false). */
  handleSignals?: boolean;
  /** Where the non-loopback warning goes (default stderr). */
  warn?: (line: string) => void;
}

export interface RunningServer {
  url: string;
  app: FastifyInstance;
  controller: Controller;
  /** Stops accepting, ends log streams, waits for the scheduler and closes the store. Idempotent. */
  close(): Promise<void>;
}

export async function startServer(opts: StartServerOptions): Promise<RunningServer> {
  const host = opts.host ?? opts.config.server.host;
  const port = opts.port ?? opts.config.server.port;
  const warn = opts.warn ?? ((line: string) => process.stderr.write(`${line}\n`));
  const controller = await Controller.open({ config: opts.config, schedule: true });
  const app = buildApp({ controller });
  try {
    await app.listen({ host, port });
  } catch (err) {
    await controller.close();
    throw err;
  }
  if (!isLoopbackHost(host)) {
    warn(
      `warning: airlock is listening on ${host}, reachable from other machines; API tokens travel in clear text unless TLS terminates in front of it`,
    );
  }
  const address = app.server.address();
  const bound = typeof address === "object" && address ? address.port : port;
  const url = `http://${host.includes(":") ? `[${host}]` : host}:${bound}`;

  let closing: Promise<void> | undefined;
  const close = () => {
    closing ??= (async () => {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
      try {
        await app.close();
      } finally {
        await controller.close();
      }
    })();
    return closing;
  };
  const onSignal = (signal: NodeJS.Signals) => {
    app.log.info({ signal }, "shutting down");
    close().then(
      () => {
        process.exitCode ??= 0;
      },
      (err: unknown) => {
        app.log.error({ err }, "shutdown failed");
        process.exitCode = 1;
      },
    );
  };
  if (opts.handleSignals ?? true) {
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
  }
  return { url, app, controller, close };
}
