import type { Command } from "commander";
import { withClient } from "../connect.js";
import { paint, table } from "../output.js";

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("the tamper-evident audit log");
  audit
    .command("verify")
    .description("check the hash chain; names every edited, deleted or reordered record")
    .action(async (_o: unknown, cmd: Command) => {
      const ok = await withClient(cmd, {}, async (client) => {
        const v = await client.auditVerify();
        if (v.ok) {
          process.stdout.write(
            `${paint("green", "audit log intact")}: ${v.records} records, head ${v.headHash.slice(0, 16)}\n`,
          );
          return true;
        }
        process.stdout.write(
          `${paint("red", `audit log TAMPERED: ${v.problems.length} problem(s) in ${v.records} records`)}\n`,
        );
        for (const p of v.problems) process.stdout.write(`  ${p.kind}: ${p.message}\n`);
        return false;
      });
      if (!ok) process.exitCode = 6;
    });
  audit
    .command("list")
    .description("audit records, oldest first")
    .option("--run <run>", "only this run")
    .option("--job <job>", "only this job")
    .option("--type <type>", "only this event type")
    .option("--limit <n>", "how many", (v) => Number.parseInt(v, 10), 200)
    .option("--json", "print JSON lines")
    .action(
      async (
        o: { run?: string; job?: string; type?: string; limit: number; json?: boolean },
        cmd: Command,
      ) => {
        await withClient(cmd, {}, async (client) => {
          const records = await client.auditList({
            ...(o.run ? { runId: o.run } : {}),
            ...(o.job ? { jobId: o.job } : {}),
            ...(o.type ? { type: o.type } : {}),
            limit: o.limit,
          });
          if (o.json)
            return void process.stdout.write(
              records.map((r) => JSON.stringify(r)).join("\n") + (records.length ? "\n" : ""),
            );
          process.stdout.write(
            `${table(
              ["SEQ", "AT", "TYPE", "ACTOR", "RUN", "JOB", "RUNNER", "DATA"],
              records.map((r) => [
                r.seq,
                r.at,
                r.type,
                r.actor,
                r.runId,
                r.jobId,
                r.runnerId,
                JSON.stringify(r.data).slice(0, 80),
              ]),
            )}\n`,
          );
        });
      },
    );
}
