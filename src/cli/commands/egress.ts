import type { Command } from "commander";
import { withClient } from "../connect.js";
import { paint, table } from "../output.js";

export function registerEgress(program: Command): void {
  const egress = program.command("egress").description("what jobs tried to reach, and what to allow");
  egress
    .command("flows")
    .description("every connection attempt of a job: destination, decision and the rule that decided")
    .argument("<job>", "job id")
    .option("--json", "print JSON")
    .action(async (jobId: string, o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const flows = await client.egressFlows(jobId);
        if (o.json) return void process.stdout.write(`${JSON.stringify(flows, null, 2)}\n`);
        if (flows.length === 0) return void process.stdout.write("no egress flows recorded for this job\n");
        process.stdout.write(
          `${table(
            ["STARTED", "PROTO", "DESTINATION", "ADDRESS", "DECISION", "RULE", "UP", "DOWN", "MS"],
            flows.map((f) => [
              f.startedAt,
              f.protocol,
              `${f.host}:${f.port}`,
              f.address,
              f.decision === "denied" ? paint("red", f.decision) : f.decision,
              f.rule,
              f.bytesUp,
              f.bytesDown,
              f.durationMs,
            ]),
          )}\n`,
        );
      });
    });
  egress
    .command("suggest")
    .description("turn the repository's audit-mode runs into a proposed egress allowlist")
    .argument("<repo>", "OWNER/NAME")
    .action(async (repo: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const suggestions = await client.egressSuggest(repo);
        if (suggestions.length === 0) {
          process.stdout.write(
            `no audit-mode traffic recorded for ${repo}; run a job with \`egress: audit\` first\n`,
          );
          return;
        }
        process.stdout.write(
          `${table(
            ["ALLOW", "FLOWS", "HOSTS SEEN"],
            suggestions.map((s) => [s.pattern, s.count, s.hosts.join(", ")]),
          )}\n\n`,
        );
        process.stdout.write("egress:\n  mode: enforce\n  allow:\n");
        for (const s of suggestions) process.stdout.write(`    - ${JSON.stringify(s.pattern)}\n`);
      });
    });
}
