import type { Command } from "commander";
import { withClient } from "../connect.js";
import { paintState, table } from "../output.js";

const collect = (v: string, acc: string[]) => [...acc, v];

export function registerApprovals(program: Command): void {
  for (const [name, decision, what] of [
    ["approve", "approved", "release a job waiting for its environment's approval"],
    ["reject", "rejected", "deny a job waiting for its environment's approval"],
  ] as const) {
    program
      .command(name)
      .description(what)
      .argument("<job>", "job id")
      .option("--comment <text>", "why, for the audit log")
      .action(async (jobId: string, o: { comment?: string }, cmd: Command) => {
        await withClient(cmd, {}, async (client) => {
          const job = await client.decideApproval(jobId, decision, o.comment);
          process.stdout.write(
            `${decision} ${job.id} (${job.key}): now ${paintState(job.conclusion ?? job.state)}\n`,
          );
        });
      });
  }

  program
    .command("pending")
    .description("jobs waiting for an environment's approval")
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const jobs = await client.listWaitingJobs();
        if (o.json) return void process.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
        process.stdout.write(
          `${table(
            ["JOB", "RUN", "KEY", "ENVIRONMENT", "APPROVALS NEEDED", "EXPIRES"],
            jobs.map((j) => [
              j.id,
              j.runId,
              j.key,
              String(j.gate?.environment ?? ""),
              String(j.gate?.requiredApprovals ?? ""),
              String(j.gate?.deadline ?? ""),
            ]),
          )}\n`,
        );
      });
    });

  const env = program.command("env").description("deployment environments and their protection rules");
  env
    .command("set")
    .description("create or replace an environment of a repository")
    .argument("<repo>", "OWNER/NAME")
    .argument("<name>", "environment name")
    .option(
      "--branch <pattern>",
      "branch allowed to deploy (repeatable; none and no --tag: any ref)",
      collect,
      [],
    )
    .option("--tag <pattern>", "tag allowed to deploy (repeatable)", collect, [])
    .option("--approvals <n>", "approvals required before a job runs", (v) => Number.parseInt(v, 10), 0)
    .option(
      "--approver <user>",
      "who may approve (repeatable; default: anyone with the approver role)",
      collect,
      [],
    )
    .option("--prevent-self-review", "the user who started a run may not approve it")
    .option(
      "--wait <seconds>",
      "wait this long after approval before running",
      (v) => Number.parseInt(v, 10),
      0,
    )
    .option(
      "--expire <seconds>",
      "deny a job not approved within this long",
      (v) => Number.parseInt(v, 10),
      86_400,
    )
    .action(
      async (
        repo: string,
        name: string,
        o: {
          branch: string[];
          tag: string[];
          approvals: number;
          approver: string[];
          preventSelfReview?: boolean;
          wait: number;
          expire: number;
        },
        cmd: Command,
      ) => {
        await withClient(cmd, {}, async (client) => {
          const e = await client.putEnvironment({
            repo,
            name,
            branches: o.branch,
            tags: o.tag,
            requiredApprovals: o.approvals,
            approvers: o.approver,
            preventSelfReview: o.preventSelfReview ?? false,
            waitSeconds: o.wait,
            approvalTtlSeconds: o.expire,
          });
          process.stdout.write(
            `environment ${e.repo}/${e.name}: refs ${[...e.branches, ...e.tags.map((t) => `tag:${t}`)].join(", ") || "any"}; ${e.requiredApprovals} approval(s)${e.approvers.length ? ` from ${e.approvers.join(", ")}` : ""}; wait ${e.waitSeconds}s\n`,
          );
        });
      },
    );
  env
    .command("list")
    .argument("<repo>", "OWNER/NAME")
    .action(async (repo: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const envs = await client.listEnvironments(repo);
        process.stdout.write(
          `${table(
            ["ENVIRONMENT", "BRANCHES", "TAGS", "APPROVALS", "APPROVERS", "WAIT", "EXPIRE"],
            envs.map((e) => [
              e.name,
              e.branches.join(","),
              e.tags.join(","),
              e.requiredApprovals,
              e.approvers.join(","),
              e.waitSeconds,
              e.approvalTtlSeconds,
            ]),
          )}\n`,
        );
      });
    });
}
