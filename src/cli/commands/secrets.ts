import type { Command } from "commander";
import { AirlockError } from "../../errors.js";
import type { SecretScope } from "../../secrets/index.js";
import { withClient } from "../connect.js";
import { table } from "../output.js";

interface ScopeOptions {
  repo?: string;
  env?: string;
  org?: string;
}

function scopeOf(o: ScopeOptions, required: boolean): SecretScope | undefined {
  if (o.env && !o.repo)
    throw new AirlockError("REQUEST_INVALID", "--env needs --repo: environments belong to a repository");
  if (o.org && o.repo) throw new AirlockError("REQUEST_INVALID", "give either --org or --repo, not both");
  if (o.org) return { kind: "org", org: o.org };
  if (o.repo && o.env) return { kind: "environment", repo: o.repo, environment: o.env };
  if (o.repo) return { kind: "repo", repo: o.repo };
  if (required)
    throw new AirlockError(
      "REQUEST_INVALID",
      "say where the secret belongs: --repo OWNER/NAME [--env NAME] or --org OWNER",
    );
  return undefined;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) {
    throw new AirlockError(
      "REQUEST_INVALID",
      "pipe the value in on stdin (it never goes on the command line)",
      {
        hint: 'e.g. printf %s "$TOKEN" | airlock secret set NPM_TOKEN --repo acme/web',
      },
    );
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // One trailing newline is how `echo` ends a value, not part of it.
  return Buffer.concat(chunks)
    .toString("utf8")
    .replace(/\r?\n$/, "");
}

export function registerSecrets(program: Command): void {
  const secret = program
    .command("secret")
    .description("secrets, sealed at rest; values are never shown again");
  const scoped = (c: Command) =>
    c
      .option("--repo <repo>", "the repository's secret (OWNER/NAME)")
      .option("--env <name>", "with --repo: only for jobs in this environment")
      .option("--org <owner>", "for every repository of this owner");
  scoped(
    secret
      .command("set")
      .description("store a secret; the value is read from stdin")
      .argument("<name>", "e.g. NPM_TOKEN"),
  ).action(async (name: string, o: ScopeOptions, cmd: Command) => {
    const scope = scopeOf(o, true) as SecretScope;
    const value = await readStdin();
    await withClient(cmd, {}, async (client) => {
      const info = await client.setSecret({ scope, name, value });
      process.stdout.write(`stored ${info.name} (version ${info.version})\n`);
    });
  });
  scoped(secret.command("list").description("names, scopes and versions (never values)")).action(
    async (o: ScopeOptions, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const list = await client.listSecrets(scopeOf(o, false));
        process.stdout.write(
          `${table(
            ["NAME", "SCOPE", "VERSION", "UPDATED", "BY"],
            list.map((s) => [s.name, JSON.stringify(s.scope), s.version, s.updatedAt, s.updatedBy]),
          )}\n`,
        );
      });
    },
  );
  scoped(secret.command("delete").argument("<name>", "secret name")).action(
    async (name: string, o: ScopeOptions, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        await client.deleteSecret({ scope: scopeOf(o, true) as SecretScope, name });
        process.stdout.write(`deleted ${name}\n`);
      });
    },
  );
}
