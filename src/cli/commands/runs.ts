import type { Command } from "commander";
import { withClient } from "../connect.js";
import { LineAssembler } from "../log-lines.js";
import { duration, paint, paintState, table } from "../output.js";
import { terminalSafe } from "../terminal-text.js";

export function registerRuns(program: Command): void {
  const runs = program.command("runs").description("list and inspect runs");
  runs
    .command("list")
    .description("recent runs, newest first")
    .option("--repo <repo>", "only this repository")
    .option("--limit <n>", "how many", (v) => Number.parseInt(v, 10), 20)
    .option("--json", "print JSON")
    .action(async (o: { repo?: string; limit: number; json?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const list = await client.listRuns({ ...(o.repo ? { repo: o.repo } : {}), limit: o.limit });
        if (o.json) return void process.stdout.write(`${JSON.stringify(list, null, 2)}\n`);
        process.stdout.write(
          `${table(
            ["RUN", "#", "REPO", "REF", "EVENT", "STATE", "ACTOR", "CREATED"],
            list.map((r) => [
              r.id,
              r.runNumber,
              r.repo,
              r.ref.replace(/^refs\/(heads|tags)\//, ""),
              r.event,
              paintState(r.state),
              r.actor,
              r.createdAt,
            ]),
          )}\n`,
        );
      });
    });
  runs
    .command("show")
    .description("a run and its jobs")
    .argument("<run>", "run id")
    .option("--json", "print JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const run = await client.getRun(id);
        if (o.json) return void process.stdout.write(`${JSON.stringify(run, null, 2)}\n`);
        process.stdout.write(
          `${paint("bold", run.id)} #${run.runNumber} ${run.repo}@${run.ref} ${run.sha.slice(0, 12)} ${run.event} by ${run.actor}: ${paintState(run.state)}\n\n`,
        );
        process.stdout.write(
          `${table(
            ["JOB", "KEY", "STATE", "CONCLUSION", "RUNNER", "TOOK", "DETAIL"],
            (run.jobs ?? []).map((j) => [
              j.id,
              j.key,
              j.state,
              j.conclusion ? paintState(j.conclusion) : null,
              j.runnerId,
              duration(j.startedAt, j.finishedAt),
              j.detail,
            ]),
          )}\n`,
        );
      });
    });
}

export function registerJob(program: Command): void {
  program
    .command("job")
    .description("a job and its steps")
    .argument("<job>", "job id")
    .option("--json", "print JSON")
    .action(async (id: string, o: { json?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const job = await client.getJob(id);
        if (o.json) return void process.stdout.write(`${JSON.stringify(job, null, 2)}\n`);
        process.stdout.write(
          `${paint("bold", job.id)} ${job.key} (run ${job.runId}): ${paintState(job.conclusion ?? job.state)}${job.detail ? ` — ${terminalSafe(job.detail)}` : ""}\n`,
        );
        if (job.decision)
          process.stdout.write(
            `policy: ${job.decision.allowed ? "allowed" : "denied"} by ${job.decision.reasons.join(", ") || "-"}\n`,
          );
        process.stdout.write(
          `\n${table(
            ["#", "STEP", "STATE", "EXIT", "TOOK"],
            (job.steps ?? []).map((s) => [
              s.index + 1,
              s.name,
              paintState(s.state),
              s.exitCode,
              duration(s.startedAt, s.finishedAt),
            ]),
          )}\n`,
        );
      });
    });
}

export function registerLogs(program: Command): void {
  program
    .command("logs")
    .description("a job's output (masked), optionally following it live")
    .argument("<job>", "job id")
    .option("-f, --follow", "keep printing until the job has finished")
    .action(async (id: string, o: { follow?: boolean }, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        const lines = new LineAssembler();
        const print = ({ stream, text }: { stream: string; text: string }) =>
          process.stdout.write(
            `${stream === "system" ? paint("cyan", terminalSafe(text)) : terminalSafe(text)}\n`,
          );
        for await (const chunk of client.logs(id, { follow: o.follow ?? false }))
          lines.push(chunk).forEach(print);
        lines.rest().forEach(print);
      });
    });
}

export function registerCancel(program: Command): void {
  program
    .command("cancel")
    .description("cancel a run or a job; running steps are killed with their whole process tree")
    .argument("<id>", "run id or job id")
    .action(async (id: string, _o: unknown, cmd: Command) => {
      await withClient(cmd, {}, async (client) => {
        await client.cancel(id);
        process.stdout.write(`cancellation requested for ${id}\n`);
      });
    });
}
