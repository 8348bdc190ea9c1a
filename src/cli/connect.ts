import type { Command } from "commander";
import { loadConfig } from "../config/config.js";
import { AirlockError } from "../errors.js";
import type { AirlockClient } from "./client.js";
import { createEmbeddedClient } from "./embedded-client.js";

export interface GlobalOptions {
  server?: string;
  token?: string;
  dataDir?: string;
  config?: string;
}

/**
 * Picks the client for a command: a server when --server (or AIRLOCK_SERVER) is given, else the
 * embedded store. `schedule` is for commands that execute jobs in this process.
 */
export async function connect(cmd: Command, opts: { schedule?: boolean } = {}): Promise<AirlockClient> {
  const g = cmd.optsWithGlobals<GlobalOptions>();
  const server = g.server ?? process.env.AIRLOCK_SERVER;
  if (server) {
    const token = g.token ?? process.env.AIRLOCK_TOKEN;
    if (!token) {
      throw new AirlockError("UNAUTHENTICATED", `no API token for ${server}`, {
        hint: "set AIRLOCK_TOKEN (issue one with `airlock token issue`)",
      });
    }
    // Loaded only when used: the embedded path should not pay for the HTTP client's imports.
    const { createHttpClient } = await import("./http-client.js");
    return createHttpClient({ baseUrl: server, token });
  }
  const config = loadConfig({ file: g.config, overrides: g.dataDir ? { dataDir: g.dataDir } : {} });
  return createEmbeddedClient(config, { schedule: opts.schedule ?? false });
}

export async function withClient<T>(
  cmd: Command,
  opts: { schedule?: boolean },
  body: (client: AirlockClient) => Promise<T>,
): Promise<T> {
  const client = await connect(cmd, opts);
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}
