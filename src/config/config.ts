import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";
import { z } from "zod";
import { AirlockError } from "../errors.js";

/** One validated configuration: defaults for the embedded mode, a file, then AIRLOCK_* variables. */
export const configSchema = z
  .object({
    dataDir: z.string().min(1),
    server: z
      .object({
        // Loopback unless told otherwise: an open control plane is the worst default there is.
        host: z.string().default("127.0.0.1"),
        port: z.number().int().min(0).max(65535).default(8480),
      })
      .strict()
      .default({ host: "127.0.0.1", port: 8480 }),
    scheduler: z
      .object({ concurrency: z.number().int().min(1).max(256).default(4) })
      .strict()
      .default({ concurrency: 4 }),
    sandbox: z
      .object({
        uidBase: z.number().int().min(1000).default(200_000),
        uidCount: z.number().int().min(1).max(65_536).default(1024),
        memoryBytes: z
          .number()
          .int()
          .min(16 * 1024 * 1024)
          .default(2 * 1024 * 1024 * 1024),
        pids: z.number().int().min(8).default(512),
        cpuWeight: z.number().int().min(1).max(10_000).default(100),
      })
      .strict()
      .default({
        uidBase: 200_000,
        uidCount: 1024,
        memoryBytes: 2 * 1024 * 1024 * 1024,
        pids: 512,
        cpuWeight: 100,
      }),
    network: z
      .object({
        // Private addresses on this host's own veths; pick a range your host does not route.
        pool: z.string().default("10.213.0.0/16"),
        proxyPort: z.number().int().min(1).max(65535).default(3128),
        transparentHttpPort: z.number().int().min(1).max(65535).default(3129),
        transparentTlsPort: z.number().int().min(1).max(65535).default(3130),
        dnsPort: z.number().int().min(1).max(65535).default(8053),
        /** Airlock's job API (ID tokens, the secrets broker) on each job's host-end address. */
        jobApiPort: z.number().int().min(1).max(65535).default(8481),
        /** Names Airlock's resolver answers itself (internal registries, git servers). */
        hosts: z.record(z.string(), z.array(z.string())).default({}),
        /** Destinations no job reaches whatever its allowlist (e.g. your LAN). */
        denyCidrs: z.array(z.string()).default([]),
      })
      .strict()
      .default({
        pool: "10.213.0.0/16",
        proxyPort: 3128,
        transparentHttpPort: 3129,
        transparentTlsPort: 3130,
        dnsPort: 8053,
        jobApiPort: 8481,
        hosts: {},
        denyCidrs: [],
      }),
    identity: z
      .object({
        /** The `iss` of job ID tokens; relying parties fetch discovery and JWKS from here. */
        issuer: z.string().default("http://127.0.0.1:8480"),
        tokenLifetimeSeconds: z.number().int().min(30).max(3600).default(300),
      })
      .strict()
      .default({ issuer: "http://127.0.0.1:8480", tokenLifetimeSeconds: 300 }),
    policyDir: z.string().optional(),
  })
  .strict();

export type Config = z.infer<typeof configSchema>;

/**
 * Job uids must be able to traverse down to their workspace, and root's home is 0700, so root
 * keeps its data in /var/lib/airlock; other users in ~/.airlock.
 */
export function defaultDataDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AIRLOCK_DATA_DIR) return env.AIRLOCK_DATA_DIR;
  return process.getuid?.() === 0 ? "/var/lib/airlock" : join(env.HOME ?? homedir(), ".airlock");
}

export interface LoadConfigOptions {
  file?: string;
  env?: NodeJS.ProcessEnv;
  overrides?: Partial<Record<"dataDir" | "policyDir", string>>;
}

export function loadConfig(opts: LoadConfigOptions = {}): Config {
  const env = opts.env ?? process.env;
  const file = opts.file ?? env.AIRLOCK_CONFIG;
  let fromFile: Record<string, unknown> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch (cause) {
      throw new AirlockError(
        "CONFIG_INVALID",
        `cannot read config file ${file}: ${(cause as Error).message}`,
        {
          cause,
        },
      );
    }
    const parsed: unknown = parseYaml(text);
    if (parsed !== null && (typeof parsed !== "object" || Array.isArray(parsed))) {
      throw new AirlockError("CONFIG_INVALID", `${file}: the config must be a mapping of settings`);
    }
    fromFile = (parsed ?? {}) as Record<string, unknown>;
  }
  const merged: Record<string, unknown> = { dataDir: defaultDataDir(env), ...fromFile };
  if (env.AIRLOCK_POLICY_DIR) merged.policyDir = env.AIRLOCK_POLICY_DIR;
  if (opts.overrides?.dataDir) merged.dataDir = opts.overrides.dataDir;
  if (opts.overrides?.policyDir) merged.policyDir = opts.overrides.policyDir;
  const result = configSchema.safeParse(merged);
  if (!result.success) {
    const issue = result.error.issues[0];
    const where = issue?.path.join(".") || "(root)";
    throw new AirlockError("CONFIG_INVALID", `${file ?? "configuration"}: ${where}: ${issue?.message}`, {
      hint: "see docs/OPERATIONS.md for the settings and their defaults",
    });
  }
  return { ...result.data, dataDir: resolve(result.data.dataDir) };
}

/**
 * Names this installation's host-wide resources (cgroups, network names) so two Airlock data
 * directories on one host never reap or reconfigure each other's jobs.
 */
export function instanceId(config: Config): string {
  return createHash("sha256").update(config.dataDir).digest("hex").slice(0, 6);
}

/** Where each part of the embedded mode keeps its files, and what its host-wide names are. */
export function dataPaths(config: Config) {
  return {
    cgroupName: `airlock-${instanceId(config)}`,
    /** nft table and interface prefix (prefix + 8 + 1 must fit a 15-character interface name). */
    networkNames: { table: `airlock_${instanceId(config)}`, prefix: `alk${instanceId(config).slice(0, 2)}` },
    database: join(config.dataDir, "airlock.db"),
    sandboxes: join(config.dataDir, "sandboxes"),
    artifacts: join(config.dataDir, "artifacts"),
    lock: join(config.dataDir, "controller.lock"),
  };
}
