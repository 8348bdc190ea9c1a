import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { formatAnchor, parseAnchor } from "../../audit/verify.js";
import { withClient } from "../connect.js";
import { paint, table } from "../output.js";

export function registerAudit(program: Command): void {
  const audit = program.command("audit").description("the tamper-evident audit log");
  audit
    .command("verify")
    .description("check the hash chain; names every edited, deleted, reordered, inserted or truncated record")
    .option(
      "--anchor <seq:hash>",
      "a head printed earlier by `airlock audit head`; the log must still hold it (repeatable)",
      collect,
      [],
    )
    .option(
      "--anchor-file <file>",
      "a file of anchors, one SEQ:HASH per line (e.g. appended by `audit head`)",
    )
    .action(async (o: { anchor: string[]; anchorFile?: string }, cmd: Command) => {
      const anchors = [...o.anchor, ...(o.anchorFile ? anchorLines(o.anchorFile) : [])].map(parseAnchor);
      const ok = await withClient(cmd, {}, async (client) => {
        const v = await client.auditVerify(anchors);
        const checked = v.anchors ? `, ${v.anchors} anchor(s) held` : "";
        if (v.ok) {
          process.stdout.write(
            `${paint("green", "audit log intact")}: ${v.records} records, head ${v.headHash.slice(0, 16)}${checked}\n`,
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
    .command("head")
    .description(
      "print the log's current head as SEQ:HASH; keep it off this machine and pass it to `audit verify --anchor` later",
    )
    .option("--json", "print JSON")
    .action(async (o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const head = await client.auditHead();
        process.stdout.write(o.json ? `${JSON.stringify(head)}\n` : `${formatAnchor(head)}\n`);
      });
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

const collect = (v: string, acc: string[]) => [...acc, v];

/** Non-empty, non-comment lines of an anchor file. */
function anchorLines(file: string): string[] {
  return readFileSync(file, "utf8")
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"));
}
