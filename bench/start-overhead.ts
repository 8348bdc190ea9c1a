/**
 * Job start overhead: submit → the step's first instruction, against raw bwrap in the same run.
 * Samples are interleaved (bwrap, bwrap+bash, driver, job, bwrap, …) so drift in machine speed
 * hits both sides, and the overhead is taken pair by pair.
 */
import { chown, mkdir } from "node:fs/promises";
import { join } from "node:path";
import { readLogs } from "../src/logs/pipeline.js";
import { readWorkflowAt, resolveRef } from "../src/repos/git-source.js";
import { openCgroups } from "../src/sandbox/cgroups/index.js";
import { createBwrapDriver, type Sandbox, type SandboxLimits } from "../src/sandbox/index.js";
import { nsToMs, rawBwrapArgs, timeBwrap, timeBwrapShellStart } from "./lib/bwrap.js";
import { removeCgroupParent } from "./lib/cgroups.js";
import { calibrateWall, log, size, wallMs } from "./lib/env.js";
import { type Fixture, jobAuditTimes, openFixture, waitForRun } from "./lib/fixture.js";
import { ladder, type Rung } from "./lib/ladder.js";
import { type ResultRow, row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

const WORKFLOW = `name: bench-start
on: push
jobs:
  start:
    runs-on: airlock
    steps:
      - run: date +%s%N
`;

const STEP_ARGV = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "date +%s%N"];
const NS_LINE = /^(\d{19})$/m;
// Outside the controller's default pool (200000…201023), so the two never share a uid.
const DRIVER_UID = 299_000;
const LIMITS: SandboxLimits = { memoryBytes: 2 * 1024 ** 3, pids: 512, cpuWeight: 100 };
const LADDER_UID = 299_001;
const RUNGS: { rung: Rung; label: string }[] = [
  { rung: "airlock-flags", label: "bwrap with Airlock's flags (--args, /etc data fds), as root" },
  { rung: "setpriv", label: "+ setpriv to the job uid → bwrap" },
  { rung: "launcher", label: "launcher spawned now: bash joins the job cgroup → setpriv → bwrap" },
  { rung: "launcher-standby", label: "launcher made ready beforehand (spawned, joined): launch" },
];

interface JobSample {
  stepStart: number;
  tornDown: number;
  submitCall: number;
  phases: Record<string, number>;
}

interface JobFailure {
  jobId: string;
  conclusion: string | null;
  detail: string | null;
  log: string;
}

async function oneJob(f: Fixture): Promise<JobSample | JobFailure> {
  calibrateWall();
  const t0 = wallMs();
  const { run, jobs } = await f.controller.submit({ repo: f.repo, ref: "main" }, f.principal);
  const submitCall = wallMs() - t0;
  const state = await waitForRun(f, run.id);
  const job = jobs[0];
  if (!job) throw new Error(`run ${run.id} has no job`);
  if (state !== "succeeded") {
    // Kept, not thrown: a failing job is a finding; its detail and log go into the JSON.
    const jobRow = await f.controller.db
      .selectFrom("jobs")
      .select(["conclusion", "detail"])
      .where("id", "=", job.id)
      .executeTakeFirstOrThrow();
    const text = (await readLogs(f.controller.db, job.id)).map((l) => l.data).join("");
    const failure = {
      jobId: job.id,
      conclusion: jobRow.conclusion,
      detail: jobRow.detail,
      log: text.slice(0, 2000),
    };
    log(`start-overhead: job ${job.id} ended ${state}: ${JSON.stringify(failure)}`);
    return failure;
  }
  const lines = await readLogs(f.controller.db, job.id);
  const ns = lines
    .filter((l) => l.stream === "stdout")
    .map((l) => NS_LINE.exec(l.data)?.[1])
    .find(Boolean);
  if (!ns) throw new Error(`job ${job.id} printed no timestamp`);
  const stepAt = nsToMs(ns);
  const a = await jobAuditTimes(f, job.id);
  const need = ["job.admitted", "job.provisioning", "job.running", "job.succeeded", "job.torn_down"];
  for (const t of need) if (a[t] === undefined) throw new Error(`job ${job.id} has no ${t} audit record`);
  const at = (t: string) => a[t] as number;
  return {
    stepStart: stepAt - t0,
    tornDown: at("job.torn_down") - t0,
    submitCall,
    // Audit times have millisecond resolution; the medians over many jobs are what to read.
    phases: {
      "submit → admitted (intake: git, parse, policy, insert)": at("job.admitted") - t0,
      "admitted → provisioning (scheduler pick-up)": at("job.provisioning") - at("job.admitted"),
      "provisioning → running (workspace + cgroup)": at("job.running") - at("job.provisioning"),
      "running → step start (step row, launcher → setpriv → bwrap → bash)": stepAt - at("job.running"),
      "step start → succeeded (step exit, log flush)": at("job.succeeded") - stepAt,
      "succeeded → torn_down (cgroup kill+rmdir, uid scan, wipe)": at("job.torn_down") - at("job.succeeded"),
    },
  };
}

interface DriverSample {
  create: number;
  stepStart: number;
  execTotal: number;
  destroy: number;
}

async function oneDriverRun(
  driver: ReturnType<typeof createBwrapDriver>,
  rootDir: string,
  i: number,
): Promise<DriverSample> {
  const jobId = `job_bench${i}`;
  calibrateWall();
  const t0 = wallMs();
  const sb: Sandbox = await driver.create({
    jobId,
    workspaceDir: join(rootDir, "workspaces", jobId),
    uid: DRIVER_UID,
    limits: LIMITS,
  });
  const t1 = wallMs();
  let out = "";
  const r = await sb.exec(
    { argv: STEP_ARGV, env: {}, cwd: "/workspace" },
    {
      write: (stream, chunk) => {
        if (stream === "stdout") out += chunk.toString();
      },
    },
  );
  const t2 = wallMs();
  await sb.destroy();
  const t3 = wallMs();
  const ns = NS_LINE.exec(out)?.[1];
  if (r.exitCode !== 0 || !ns) throw new Error(`driver step exited ${r.exitCode} printing ${out}`);
  return { create: t1 - t0, stepStart: nsToMs(ns) - t1, execTotal: t2 - t1, destroy: t3 - t2 };
}

export const startOverhead: Bench = {
  name: "start-overhead",
  description: "one-step job: submit → step start and → torn_down, vs raw bwrap (sequential)",
  async run() {
    const n = size("START_JOBS", 200, 20);
    const warmup = size("START_WARMUP", 5, 2);
    const prefix = await rawBwrapArgs();
    const f = await openFixture("start", WORKFLOW, 1);
    const driverCgroup = `airlock-bench-${process.pid}`;
    const driverRoot = join(f.dataDir, "bench-driver");
    const driver = createBwrapDriver({ rootDir: driverRoot, cgroupName: driverCgroup });
    const bwrapTrue: number[] = [];
    const bwrapShell: number[] = [];
    const jobs: JobSample[] = [];
    const failures: JobFailure[] = [];
    const record = (r: JobSample | JobFailure, i: number) => {
      if ("jobId" in r) failures.push(r);
      else {
        jobs.push(r);
        pairedTrue.push(r.stepStart - (bwrapTrue[i] as number));
        pairedShell.push(r.stepStart - (bwrapShell[i] as number));
      }
    };
    const pairedTrue: number[] = [];
    const pairedShell: number[] = [];
    const drv: DriverSample[] = [];
    const gitCalls: number[] = [];
    const rungs: Record<Rung, number[]> = {
      "airlock-flags": [],
      setpriv: [],
      launcher: [],
      "launcher-standby": [],
    };
    const ladderRootWs = join(f.dataDir, "bench-ladder", "root-ws");
    const ladderJobWs = join(f.dataDir, "bench-ladder", "job-ws");
    await mkdir(join(f.dataDir, "bench-ladder"), { mode: 0o711 });
    await mkdir(ladderRootWs, { mode: 0o700 });
    await mkdir(ladderJobWs, { mode: 0o700 });
    await chown(ladderJobWs, LADDER_UID, LADDER_UID);
    const ladderCgroup = await (await openCgroups(driverCgroup)).create("job_ladder", LIMITS);
    const launch = await ladder(ladderRootWs, ladderJobWs, LADDER_UID, ladderCgroup.procsFiles);
    try {
      for (let i = 0; i < warmup; i++) {
        await timeBwrap(prefix, ["true"]);
        await timeBwrapShellStart(prefix);
        for (const r of RUNGS) await launch(r.rung);
        await oneDriverRun(driver, driverRoot, -1 - i);
        await oneJob(f);
      }
      for (let i = 0; i < n; i++) {
        bwrapTrue.push(await timeBwrap(prefix, ["true"]));
        bwrapShell.push(await timeBwrapShellStart(prefix));
        for (const r of RUNGS) rungs[r.rung].push(await launch(r.rung));
        drv.push(await oneDriverRun(driver, driverRoot, i));
        record(await oneJob(f), i);
        if ((i + 1) % 50 === 0) log(`start-overhead: ${i + 1}/${n} jobs`);
      }
      // Intake's own git work, alone: what submit() runs before admission (ref, then workflow).
      for (let i = 0; i < Math.min(n, 50); i++) {
        const t0 = performance.now();
        const resolved = await resolveRef(f.source, "main");
        await readWorkflowAt(f.source, resolved.sha);
        gitCalls.push(performance.now() - t0);
      }
    } finally {
      await ladderCgroup.remove().catch(() => undefined);
      await driver.close();
      await f.close();
      await removeCgroupParent(driverCgroup);
    }

    const B = "start-overhead";
    const sTrue = summarize(bwrapTrue);
    const sShell = summarize(bwrapShell);
    const sStart = summarize(jobs.map((j) => j.stepStart));
    const sDown = summarize(jobs.map((j) => j.tornDown));
    const overTrue = summarize(pairedTrue);
    const overShell = summarize(pairedShell);
    const baseTrue = { name: "raw bwrap true", value: sTrue.p50 };
    const baseShell = { name: "raw bwrap+bash start", value: sShell.p50 };
    const rows: ResultRow[] = [
      row(B, "raw bwrap `true`: spawn → exit", "ms", sTrue),
      row(B, "raw bwrap `bash -eo pipefail -c date`: spawn → step start", "ms", sShell, {
        baseline: baseTrue,
      }),
      row(B, "job submit → step start", "ms", sStart, { baseline: baseTrue }),
      row(B, "start overhead: (submit → step start) − raw bwrap true, paired", "ms", overTrue, {
        targets: [
          { stat: "p50", op: "<=", value: 30 },
          { stat: "p99", op: "<=", value: 100 },
        ],
      }),
      row(B, "start overhead: (submit → step start) − raw bwrap+bash, paired", "ms", overShell, {
        note: "same bash start on both sides",
      }),
      row(B, "job submit → torn_down (provision + run + teardown)", "ms", sDown, { baseline: baseTrue }),
      row(B, "controller.submit() call", "ms", summarize(jobs.map((j) => j.submitCall))),
      {
        ...row(B, "jobs that did not succeed", "count", { p50: failures.length, p99: failures.length, n: n }),
        targets: [{ stat: "p50", op: "<=", value: 0 }],
        pass: failures.length === 0,
      },
    ];
    const phaseNames = Object.keys(jobs[0]?.phases ?? {});
    for (const p of phaseNames) {
      rows.push(row(`${B}/phases`, `phase: ${p}`, "ms", summarize(jobs.map((j) => j.phases[p] as number))));
    }
    rows.push(
      row(
        `${B}/phases`,
        "intake's git reads alone: resolveRef + readWorkflowAt (a `git cat-file --batch` each)",
        "ms",
        summarize(gitCalls),
      ),
    );
    const L = `${B}/ladder`;
    for (const r of RUNGS) {
      rows.push(
        row(L, `launch: ${r.label}: spawn → step start`, "ms", summarize(rungs[r.rung]), {
          baseline: baseShell,
        }),
      );
    }
    const D = `${B}/driver`;
    rows.push(
      row(
        D,
        "driver only: create (workspace + cgroup, standby slot claimed)",
        "ms",
        summarize(drv.map((d) => d.create)),
      ),
      row(
        D,
        "driver only: exec → step start (launcher → setpriv → bwrap → bash)",
        "ms",
        summarize(drv.map((d) => d.stepStart)),
        {
          baseline: baseShell,
        },
      ),
      row(D, "driver only: exec → exit", "ms", summarize(drv.map((d) => d.execTotal)), {
        baseline: baseTrue,
      }),
      row(
        D,
        "driver only: destroy (cgroup kill+rmdir, uid scan, wipe)",
        "ms",
        summarize(drv.map((d) => d.destroy)),
      ),
    );
    return {
      rows,
      details: {
        jobs: n,
        warmup,
        failures,
        bwrapArgs: prefix,
        samples: { bwrapTrue, bwrapShell, stepStart: jobs.map((j) => j.stepStart) },
      },
    };
  },
};
