/**
 * A real controller over a throwaway data directory and git repository: the same code path as
 * `airlock run`, with the default bwrap driver and the default "airlock" cgroup parent.
 */

import { execFileSync } from "node:child_process";
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { listAudit } from "../../src/audit/log.js";
import { ensureLocalAdmin, type Principal } from "../../src/auth/index.js";
import { configSchema, dataPaths } from "../../src/config/config.js";
import { Controller } from "../../src/controller/controller.js";
import { registerRepo } from "../../src/repos/registry.js";
import { STANDBY_PREFIX } from "../../src/sandbox/standby-pool.js";

export interface Fixture {
  controller: Controller;
  principal: Principal;
  repo: string;
  /** The registered repository's working copy. */
  source: string;
  dataDir: string;
  workspacesDir: string;
  /** The controller's cgroup parent in every hierarchy (`airlock-<instance>`). */
  cgroupName: string;
  close(): Promise<void>;
}

export async function openFixture(name: string, workflow: string, concurrency: number): Promise<Fixture> {
  const base = await mkdtemp(join(tmpdir(), `airlock-bench-${name}-`));
  await chmod(base, 0o711);
  const dataDir = join(base, "data");
  await mkdir(dataDir, { mode: 0o711 });
  await chmod(dataDir, 0o711);
  const src = join(base, "repo");
  await mkdir(join(src, ".airlock", "workflows"), { recursive: true });
  await writeFile(join(src, ".airlock", "workflows", "ci.yml"), workflow);
  const git = (...args: string[]) =>
    execFileSync("git", ["-c", "user.name=bench", "-c", "user.email=bench@localhost", ...args], {
      cwd: src,
      stdio: "ignore",
    });
  git("init", "-q", "-b", "main");
  git("add", ".");
  git("commit", "-q", "-m", "bench workflow");

  const config = configSchema.parse({ dataDir, scheduler: { concurrency } });
  const controller = await Controller.open({ config, schedule: true });
  const principal = await ensureLocalAdmin(controller.db);
  const repo = `bench/${name}`;
  await registerRepo(controller.db, { name: repo, source: src }, principal.userName);
  return {
    controller,
    principal,
    repo,
    source: src,
    dataDir,
    workspacesDir: join(dataPaths(config).sandboxes, "workspaces"),
    cgroupName: dataPaths(config).cgroupName,
    async close() {
      await controller.close();
      await rm(base, { recursive: true, force: true });
    },
  };
}

/** Polls the store until every job of the run is in a final state (torn_down, denied, …). */
export async function waitForRun(f: Fixture, runId: string, pollMs = 5): Promise<string> {
  for (;;) {
    const open = await f.controller.db
      .selectFrom("jobs")
      .select("id")
      .where("run_id", "=", runId)
      .where("state", "not in", ["torn_down", "denied", "skipped", "cancelled"])
      .executeTakeFirst();
    if (!open) {
      const run = await f.controller.db
        .selectFrom("runs")
        .select("state")
        .where("id", "=", runId)
        .executeTakeFirstOrThrow();
      if (["succeeded", "failed", "cancelled"].includes(run.state)) return run.state;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

/** Audit record times (ms since epoch, millisecond resolution) of one job, by record type. */
export async function jobAuditTimes(f: Fixture, jobId: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const r of await listAudit(f.controller.db, { jobId })) out[r.type] ??= Date.parse(r.at);
  return out;
}

export async function runAuditTime(f: Fixture, runId: string, type: string): Promise<number | undefined> {
  const [r] = await listAudit(f.controller.db, { runId, type, limit: 1 });
  return r ? Date.parse(r.at) : undefined;
}

export interface Leftovers {
  /** Live processes with any uid >= 200000 (the default job uid range). */
  processes: { pid: number; ppid: number; name: string; uids: number[]; state: string; cmdline: string }[];
  /** Zombies among them: exited, holding no memory or cgroup, waiting for their parent to reap them. */
  zombies: number;
  /** Job cgroups: directories under /sys/fs/cgroup/<hierarchy>/<cgroup parent>/, standby slots aside. */
  cgroups: string[];
  /** Standby slots (cgroup + waiting launcher) the driver keeps ready on purpose. */
  standbySlots: string[];
  /** Entries under <dataDir>/sandboxes/workspaces. */
  workspaces: string[];
}

export async function findLeftovers(
  workspacesDir: string,
  cgroupParent: string,
  uidFloor = 200_000,
): Promise<Leftovers> {
  const processes: Leftovers["processes"] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const status = await readFile(`/proc/${name}/status`, "utf8");
      const uids = /^Uid:\s+(.*)$/m.exec(status)?.[1]?.split(/\s+/).map(Number) ?? [];
      if (uids.some((u) => u >= uidFloor)) {
        const state = /^State:\s+(.*)$/m.exec(status)?.[1] ?? "?";
        const cmdline = (await readFile(`/proc/${name}/cmdline`, "utf8").catch(() => "")).replaceAll(
          "\0",
          " ",
        );
        const ppid = Number(/^PPid:\s+(\d+)$/m.exec(status)?.[1] ?? -1);
        const comm = /^Name:\s+(.*)$/m.exec(status)?.[1] ?? "?";
        processes.push({
          pid: Number(name),
          ppid,
          name: comm,
          uids,
          state,
          cmdline: cmdline.trim().slice(0, 200),
        });
      }
    } catch {
      // The process exited while we looked.
    }
  }
  const cgroups: string[] = [];
  const standbySlots: string[] = [];
  for (const h of await readdir("/sys/fs/cgroup").catch(() => [] as string[])) {
    const parent = join("/sys/fs/cgroup", h, cgroupParent);
    const entries = await readdir(parent, { withFileTypes: true }).catch(() => []);
    for (const e of entries) {
      if (!e.isDirectory()) continue;
      (e.name.startsWith(STANDBY_PREFIX) ? standbySlots : cgroups).push(join(parent, e.name));
    }
  }
  const workspaces = await readdir(workspacesDir).catch(() => [] as string[]);
  const zombies = processes.filter((p) => p.state.startsWith("Z")).length;
  return { processes, zombies, cgroups, standbySlots, workspaces };
}
