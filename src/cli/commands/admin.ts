import type { Command } from "commander";
import { withClient } from "../connect.js";
import { paint, table } from "../output.js";

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerRepo(program: Command): void {
  const repo = program.command("repo").description("registered repositories");
  repo
    .command("add")
    .description("register a local git repository under an OWNER/NAME identity")
    .argument("<name>", "OWNER/NAME")
    .requiredOption("--source <path>", "path of the local git repository")
    .option(
      "--protected-branch <pattern>",
      "branch pattern that counts as protected (repeatable; default main)",
      collect,
      [],
    )
    .option("--protected-tag <pattern>", "tag pattern that counts as protected (repeatable)", collect, [])
    .option(
      "--egress-allow <host[:port]>",
      "egress every job of the repository may use (repeatable)",
      collect,
      [],
    )
    .action(
      async (
        name: string,
        o: { source: string; protectedBranch: string[]; protectedTag: string[]; egressAllow: string[] },
        cmd: Command,
      ) => {
        await withClient(cmd, {}, async (client) => {
          const r = await client.addRepo({
            name,
            source: o.source,
            ...(o.protectedBranch.length ? { protectedBranches: o.protectedBranch } : {}),
            protectedTags: o.protectedTag,
            egressAllow: o.egressAllow,
          });
          process.stdout.write(
            `registered ${r.name} (${r.id}) from ${r.source}; protected branches: ${r.protection.branches.join(", ") || "none"}; tags: ${r.protection.tags.join(", ") || "none"}\n`,
          );
        });
      },
    );
  repo
    .command("list")
    .description("registered repositories")
    .action(async (_o: unknown, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const repos = await client.listRepos();
        process.stdout.write(
          `${table(
            ["REPO", "SOURCE", "PROTECTED BRANCHES", "PROTECTED TAGS"],
            repos.map((r) => [
              r.name,
              r.source,
              r.protection.branches.join(","),
              r.protection.tags.join(","),
            ]),
          )}\n`,
        );
      });
    });
}

export function registerIdentity(program: Command): void {
  const repoCmd = program.commands.find((c) => c.name() === "repo") as Command;
  repoCmd
    .command("oidc-subject")
    .description(
      "choose which claims make up `sub` in the repository's ID tokens (GitHub's include_claim_keys)",
    )
    .argument("<repo>", "OWNER/NAME")
    .option("--claims <keys>", "comma-separated claim keys, e.g. repository_owner,context,job_workflow_ref")
    .option("--immutable", "use owner and repository ids instead of names")
    .option("--reset", "back to GitHub's default sub")
    .action(
      async (repo: string, o: { claims?: string; immutable?: boolean; reset?: boolean }, cmd: Command) => {
        await withClient(cmd, {}, async (client) => {
          const customization = o.reset
            ? null
            : {
                ...(o.claims
                  ? {
                      includeClaimKeys: o.claims
                        .split(",")
                        .map((k) => k.trim())
                        .filter(Boolean),
                    }
                  : {}),
                ...(o.immutable ? { useImmutable: true } : {}),
              };
          const r = await client.setOidcSubject(repo, customization);
          process.stdout.write(
            `${r.name}: sub ${r.oidcSubject ? JSON.stringify(r.oidcSubject) : "uses GitHub's default claims"}\n`,
          );
        });
      },
    );
  program
    .command("keys")
    .description("signing keys: ID tokens and artifact provenance")
    .command("rotate")
    .description(
      "sign with a fresh key: ID tokens (the old public key stays in the JWKS until its tokens expire) or, with --provenance, artifact provenance (old keys stay trusted until revoked)",
    )
    .option("--provenance", "rotate the provenance signing key instead of the ID-token key")
    .action(async (o: { provenance?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const r = await client.rotateSigningKey(o.provenance ? "provenance" : "id-token");
        process.stdout.write(`signing with ${r.created}${r.retired ? `; retired ${r.retired}` : ""}\n`);
      });
    });
}

export function registerUsers(program: Command): void {
  const user = program.command("user").description("users and their roles");
  user
    .command("add")
    .argument("<name>", "user name")
    .requiredOption("--role <role>", "admin, approver, submitter or viewer")
    .action(async (name: string, o: { role: string }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const u = await client.createUser({ name, role: o.role });
        process.stdout.write(`created ${u.name} (${u.id}) with role ${u.role}\n`);
      });
    });
  user.command("list").action(async (_o: unknown, cmd: Command) => {
    await withClient(cmd, {}, async (client) => {
      const users = await client.listUsers();
      process.stdout.write(
        `${table(
          ["USER", "ID", "ROLE", "CREATED", "DISABLED"],
          users.map((u) => [u.name, u.id, u.role, u.createdAt, u.disabledAt]),
        )}\n`,
      );
    });
  });

  const token = program.command("token").description("API tokens (shown once, stored only as hashes)");
  token
    .command("issue")
    .option("--user <name>", "whose token (default: yourself)")
    .option("--name <label>", "what the token is for", "cli")
    .option("--ttl <seconds>", "lifetime in seconds (default 30 days)", (v) => Number.parseInt(v, 10))
    .action(async (o: { user?: string; name: string; ttl?: number }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const t = await client.issueToken({
          name: o.name,
          ...(o.user ? { user: o.user } : {}),
          ...(o.ttl ? { ttlSeconds: o.ttl } : {}),
        });
        process.stdout.write(`${t.token}\n`);
        process.stderr.write(
          `${paint("gray", `token ${t.id} expires ${t.expiresAt}; it is shown only this once`, "err")}\n`,
        );
      });
    });
  token
    .command("revoke")
    .argument("<token-id>", "tok_… id")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const t = await client.revokeToken(id);
        process.stdout.write(`revoked ${t.id}\n`);
      });
    });
}
