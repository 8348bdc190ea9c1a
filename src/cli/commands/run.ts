import type { Command } from "commander";
import type { JobView, RunView } from "../../controller/views.js";
import { AirlockError } from "../../errors.js";
import type { AirlockClient } from "../client.js";
import { withClient } from "../connect.js";
import { LineAssembler } from "../log-lines.js";
import { duration, paint, paintState } from "../output.js";
import { terminalSafe } from "../terminal-text.js";

interface RunOptions {
  ref: string;
  sha?: string;
  event: string;
  workflow?: string;
  input: string[];
  detach?: boolean;
  logs: boolean;
}

export function registerRun(program: Command): void {
  program
    .command("run")
    .description("run a registered repository's workflow and follow it to the end")
    .argument("<repo>", "registered repository, OWNER/NAME")
    .option("--ref <ref>", "branch or tag to run", "main")
    .option("--sha <sha>", "pin the commit (must be on --ref)")
    .option("--event <event>", "triggering event", "push")
    .option("--workflow <path>", "workflow file in the repository (default: the only one)")
    .option(
      "--input <key=value>",
      "workflow input (repeatable)",
      (v: string, acc: string[]) => [...acc, v],
      [],
    )
    .option("--detach", "print the run id and return without waiting")
    .option("--no-logs", "show job states only, not step output")
    .action(async (repo: string, o: RunOptions, cmd: Command) => {
      const inputs = parseInputs(o.input);
      const code = await withClient(cmd, { schedule: !o.detach }, async (client) => {
        const run = await client.submitRun({
          repo,
          ref: o.ref,
          event: o.event,
          inputs,
          ...(o.sha ? { sha: o.sha } : {}),
          ...(o.workflow ? { workflow: o.workflow } : {}),
        });
        process.stdout.write(
          `${paint("bold", `run ${run.id}`)} #${run.runNumber} ${run.repo}@${run.ref.replace(/^refs\/(heads|tags)\//, "")} (${run.sha.slice(0, 12)}) ${run.workflow}\n`,
        );
        for (const job of run.jobs ?? []) if (job.state === "denied") printDenied(job);
        if (o.detach && client.mode === "server") return 0;
        const final = await follow(client, run, o.logs);
        process.stdout.write(`${paint("bold", `run ${final.id}`)} ${paintState(final.state)}\n`);
        return final.state === "succeeded" ? 0 : 1;
      });
      process.exitCode = code;
    });
}

function parseInputs(pairs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const pair of pairs) {
    const eq = pair.indexOf("=");
    if (eq <= 0) throw new AirlockError("REQUEST_INVALID", `--input "${pair}" must look like key=value`);
    out[pair.slice(0, eq)] = pair.slice(eq + 1);
  }
  return out;
}

function printDenied(job: JobView): void {
  process.stdout.write(
    `${paint("red", `✗ ${job.key} denied`)} by policy ${job.decision?.reasons.join(", ") || "(no permit matched)"}\n`,
  );
}

const finalMark: Record<string, string> = {
  succeeded: "✓",
  failed: "✗",
  timed_out: "✗",
  cancelled: "⊘",
  skipped: "-",
};

/** Streams every job's log as it starts and prints each job's outcome once, when it is known. */
async function follow(client: AirlockClient, run: RunView, showLogs: boolean): Promise<RunView> {
  const following = new Map<string, Promise<void>>();
  const reported = new Set<string>((run.jobs ?? []).filter((j) => j.state === "denied").map((j) => j.id));
  const report = (job: JobView) => {
    if (reported.has(job.id)) return;
    reported.add(job.id);
    printOutcome(job);
  };
  const hinted = new Set<string>();
  const final = await client.waitForRun(run.id, (current) => {
    for (const job of current.jobs ?? []) {
      if (job.state === "waiting_approval" && !hinted.has(job.id)) {
        hinted.add(job.id);
        process.stdout.write(
          `${paint("yellow", `⏸ ${job.key} waits for approval`)} (environment ${String(job.gate?.environment)}, expires ${String(job.gate?.deadline)}): airlock approve ${job.id}\n`,
        );
      }
      const started = !["queued", "admitted", "waiting_approval", "denied", "skipped", "cancelled"].includes(
        job.state,
      );
      if (started && !following.has(job.id)) {
        const logs = showLogs ? printLogs(client, job) : waitUntilTornDown(client, job.id);
        following.set(
          job.id,
          logs.then(async () => report(await client.getJob(job.id))),
        );
      } else if (!started && job.conclusion && !following.has(job.id)) {
        report(job);
      }
    }
  });
  await Promise.all(following.values());
  for (const job of final.jobs ?? []) if (job.conclusion) report(job);
  return final;
}

async function waitUntilTornDown(client: AirlockClient, jobId: string): Promise<void> {
  for await (const _ of client.logs(jobId, { follow: true })) {
    // Only the end of the stream matters here.
  }
}

function printOutcome(job: JobView): void {
  const c = job.conclusion ?? job.state;
  const took = duration(job.startedAt, job.finishedAt);
  const detail = job.detail && c !== "succeeded" ? `: ${terminalSafe(job.detail)}` : "";
  process.stdout.write(
    `${paintState(c, `${finalMark[c] ?? "•"} ${job.key} ${c}`)}${took ? ` (${took})` : ""}${detail}\n`,
  );
}

async function printLogs(client: AirlockClient, job: JobView): Promise<void> {
  const prefix = paint("gray", `[${job.key}] `);
  const lines = new LineAssembler();
  const print = ({ stream, text: raw }: { stream: string; text: string }) => {
    const text = terminalSafe(raw);
    const shown =
      stream === "system" ? paint("cyan", text) : stream === "stderr" ? paint("yellow", text) : text;
    process.stdout.write(`${prefix}${shown}\n`);
  };
  for await (const chunk of client.logs(job.id, { follow: true })) lines.push(chunk).forEach(print);
  lines.rest().forEach(print);
}
