/**
 * A burst: one run whose workflow has N independent `sleep 0.2` jobs, with concurrency N. Wall
 * time is submit → the last job torn down; the baseline is N raw `bwrap … sleep 0.2` started at
 * once. Afterwards nothing of the jobs may be left: processes, cgroups, workspaces.
 */
import { listAudit } from "../src/audit/log.js";
import { rawBwrapArgs, timeBwrap } from "./lib/bwrap.js";
import { calibrateWall, log, size, wallMs } from "./lib/env.js";
import { findLeftovers, type Leftovers, openFixture, waitForRun } from "./lib/fixture.js";
import { row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

function workflow(jobs: number): string {
  const lines = ["name: bench-burst", "on: push", "jobs:"];
  for (let i = 1; i <= jobs; i++) {
    lines.push(
      `  j${String(i).padStart(3, "0")}:`,
      "    runs-on: airlock",
      "    steps:",
      "      - run: sleep 0.2",
    );
  }
  return `${lines.join("\n")}\n`;
}

export const concurrentJobs: Bench = {
  name: "concurrent-jobs",
  description: "N independent `sleep 0.2` jobs at once (concurrency N): wall time and leftovers",
  async run() {
    const jobs = size("BURST_JOBS", 50, 50);
    const repeats = size("BURST_REPEATS", 3, 1);
    const prefix = await rawBwrapArgs();
    const f = await openFixture("burst", workflow(jobs), jobs);
    const wall: number[] = [];
    const firstStart: number[] = [];
    const lastStart: number[] = [];
    const raw: number[] = [];
    const leftovers: Leftovers[] = [];
    const submitCall: number[] = [];
    const failures: { id: string; key: string; conclusion: string | null; detail: string | null }[] = [];
    // Per job, over all repeats: how long each phase took while N jobs shared the machine.
    const phases: Record<string, number[]> = {
      "provisioning → running": [],
      "running → succeeded (sleep 0.2 + exec)": [],
      "succeeded → torn_down": [],
    };
    try {
      for (let r = 0; r < repeats; r++) {
        const t0 = performance.now();
        await Promise.all(Array.from({ length: jobs }, () => timeBwrap(prefix, ["sleep", "0.2"])));
        raw.push(performance.now() - t0);

        calibrateWall();
        const w0 = wallMs();
        const { run } = await f.controller.submit({ repo: f.repo, ref: "main" }, f.principal);
        submitCall.push(wallMs() - w0);
        const state = await waitForRun(f, run.id, 10);
        const observed = wallMs();
        if (state !== "succeeded") {
          // Kept, not thrown: a job that fails under load is a finding of the benchmark.
          const bad = await f.controller.db
            .selectFrom("jobs")
            .select(["id", "key", "conclusion", "detail"])
            .where("run_id", "=", run.id)
            .where("conclusion", "!=", "succeeded")
            .execute();
          failures.push(...bad);
          log(`concurrent-jobs: run ${run.id} ended ${state}: ${JSON.stringify(bad)}`);
        }
        const records = await listAudit(f.controller.db, { runId: run.id });
        const at = (type: string) => records.filter((x) => x.type === type).map((x) => Date.parse(x.at));
        const torn = at("job.torn_down");
        const running = at("job.running");
        if (torn.length !== jobs) throw new Error(`burst run ${run.id}: ${torn.length}/${jobs} torn down`);
        const byJob = new Map<string, Record<string, number>>();
        for (const x of records) {
          if (!x.jobId) continue;
          const m = byJob.get(x.jobId) ?? {};
          m[x.type] ??= Date.parse(x.at);
          byJob.set(x.jobId, m);
        }
        for (const m of byJob.values()) {
          const d = (a: string, b: string) => (m[b] as number) - (m[a] as number);
          phases["provisioning → running"]?.push(d("job.provisioning", "job.running"));
          phases["running → succeeded (sleep 0.2 + exec)"]?.push(d("job.running", "job.succeeded"));
          phases["succeeded → torn_down"]?.push(d("job.succeeded", "job.torn_down"));
        }
        // Submit → last torn_down record; the poll that noticed it is at most 10 ms later.
        wall.push(Math.min(observed, Math.max(...torn)) - w0);
        firstStart.push(Math.min(...running) - w0);
        lastStart.push(Math.max(...running) - w0);
        // Checked before the controller closes: teardown itself must have left nothing.
        const left = await findLeftovers(f.workspacesDir, f.cgroupName);
        leftovers.push(left);
        log(
          `concurrent-jobs: run ${r + 1}/${repeats}: ${Math.round(wall[wall.length - 1] as number)} ms; leftovers: ` +
            `${left.processes.length - left.zombies} live processes (+${left.zombies} zombies), ` +
            `${left.cgroups.length} cgroups, ${left.workspaces.length} workspaces`,
        );
      }
    } finally {
      await f.close();
    }
    const B = "concurrent-jobs";
    const sRaw = summarize(raw);
    // Zombies are counted apart: exited processes (bwrap's inner pid-1, orphaned when the outer
    // bwrap exits) that hold no memory and no cgroup, waiting for the host's PID 1 to reap them.
    const live = (l: Leftovers) => l.processes.length - l.zombies;
    const leftCount = leftovers.reduce((a, l) => a + live(l) + l.cgroups.length + l.workspaces.length, 0);
    const zombies = leftovers.reduce((a, l) => a + l.zombies, 0);
    return {
      rows: [
        row(B, `raw bwrap \`sleep 0.2\` ×${jobs} at once: wall`, "ms", sRaw),
        row(B, `${jobs} jobs, concurrency ${jobs}: submit → all torn_down`, "ms", summarize(wall), {
          baseline: { name: `raw bwrap ×${jobs}`, value: sRaw.p50 },
        }),
        row(
          B,
          `${jobs} jobs: controller.submit() call (intake of ${jobs} jobs)`,
          "ms",
          summarize(submitCall),
        ),
        row(B, `${jobs} jobs: submit → first job running`, "ms", summarize(firstStart)),
        row(B, `${jobs} jobs: submit → last job running`, "ms", summarize(lastStart)),
        ...Object.entries(phases).map(([name, xs]) =>
          row(`${B}/phases`, `${jobs} jobs, per job: ${name}`, "ms", summarize(xs)),
        ),
        {
          ...row(
            B,
            `${jobs} jobs: leftovers after teardown, all runs (live procs+cgroups+workspaces)`,
            "count",
            {
              p50: leftCount,
              p99: leftCount,
              n: leftovers.length,
            },
          ),
          targets: [{ stat: "p50", op: "<=", value: 0 }],
          pass: leftCount === 0,
        },
        row(B, `${jobs} jobs: zombie job-uid processes right after teardown, all runs`, "count", {
          p50: zombies,
          p99: zombies,
          n: leftovers.length,
        }),
        {
          ...row(B, `${jobs} jobs: jobs that did not succeed, all runs`, "count", {
            p50: failures.length,
            p99: failures.length,
            n: jobs * repeats,
          }),
          targets: [{ stat: "p50", op: "<=", value: 0 }],
          pass: failures.length === 0,
        },
      ],
      details: { jobs, repeats, wallMs: wall, rawMs: raw, failures, leftovers },
    };
  },
};
