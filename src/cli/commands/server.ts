import type { Command } from "commander";
import { dataPaths, loadConfig } from "../../config/config.js";
import { createBwrapDriver } from "../../sandbox/index.js";
import type { GlobalOptions } from "../connect.js";
import { paint } from "../output.js";

export function registerServer(program: Command): void {
  program
    .command("server")
    .description("run the control plane as an HTTP server (binds to loopback unless told otherwise)")
    .option("--host <host>", "address to bind")
    .option("--port <port>", "port to listen on", (v) => Number.parseInt(v, 10))
    .action(async (o: { host?: string; port?: number }, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const config = loadConfig({ file: g.config, overrides: g.dataDir ? { dataDir: g.dataDir } : {} });
      const { startServer } = await import("../../server/serve.js");
      const server = await startServer({
        config,
        ...(o.host ? { host: o.host } : {}),
        ...(o.port !== undefined ? { port: o.port } : {}),
      });
      process.stdout.write(`airlock server listening on ${server.url} (data: ${config.dataDir})\n`);
    });

  program
    .command("doctor")
    .description(
      "check that this host can run sandboxed jobs (bubblewrap, user namespaces, seccomp, cgroups)",
    )
    .action(async (_o: unknown, cmd: Command) => {
      const g = cmd.optsWithGlobals<GlobalOptions>();
      const config = loadConfig({ file: g.config, overrides: g.dataDir ? { dataDir: g.dataDir } : {} });
      const paths = dataPaths(config);
      await createBwrapDriver({ rootDir: paths.sandboxes, cgroupName: paths.cgroupName }).preflight();
      process.stdout.write(
        `${paint("green", "ok")}: bubblewrap, user namespaces, seccomp filters and cgroups are usable; data in ${config.dataDir}\n`,
      );
    });
}
