/**
 * One contract for every cgroup backend, run against whichever this host offers (v1 here, v2 on a
 * modern host). Real cgroups: needs root.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdir, readFile, rmdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { type CgroupLayout, detectCgroups, parseMounts } from "./detect.js";
import { backendFor } from "./index.js";
import type { CgroupBackend, JobCgroup } from "./types.js";
import { createV2Backend } from "./v2.js";

const layout: CgroupLayout = await detectCgroups();
const parent = `airlock-contract-${process.pid}`;
const limits = { memoryBytes: 48 * 1024 * 1024, pids: 16, cpuWeight: 200 };

/** Version-specific readback of what create() wrote. */
async function readLimits(l: CgroupLayout, jobId: string) {
  const r = (dir: string, file: string) =>
    readFile(join(dir, parent, jobId, file), "utf8").then((s) => s.trim());
  if (l.version === 2) {
    return {
      memory: await r(l.mount, "memory.max"),
      pids: await r(l.mount, "pids.max"),
      cpu: await r(l.mount, "cpu.weight"),
    };
  }
  return {
    memory: await r(l.mounts.memory, "memory.limit_in_bytes"),
    pids: await r(l.mounts.pids, "pids.max"),
    cpu: await r(l.mounts.cpu, "cpu.shares"),
  };
}

/** A root process that joins the cgroup the same way the step wrapper does, then runs `cmd`. */
function spawnInside(cg: JobCgroup, cmd: string): ChildProcess {
  const script =
    'n=$1; shift; while [ $n -gt 0 ]; do echo $$ > "$1"; shift; n=$((n-1)); done; exec /bin/sh -c "$1"';
  return spawn("/bin/sh", ["-c", script, "sh", String(cg.procsFiles.length), ...cg.procsFiles, cmd], {
    stdio: "ignore",
  });
}

async function liveState(pid: number): Promise<"gone" | "alive"> {
  const status = await readFile(`/proc/${pid}/status`, "utf8").catch(() => "State: X");
  return /^State:\s+[ZX]/m.test(status) ? "gone" : "alive";
}

async function waitFor(cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 250 && !(await cond()); i++) await new Promise((r) => setTimeout(r, 20));
}

function contract(name: string, backend: CgroupBackend) {
  describe(`cgroup backend contract: ${name}`, () => {
    afterAll(async () => {
      for (const job of await backend.list()) await backend.open(job).remove();
      const mounts = layout.version === 2 ? [layout.mount] : [...new Set(Object.values(layout.mounts))];
      for (const m of mounts) await rmdir(join(m, parent)).catch(() => undefined);
    });

    it("creates a job cgroup with the requested limits, once", async () => {
      await backend.check();
      await backend.create("job_limits", limits);
      expect(await backend.list()).toContain("job_limits");
      const got = await readLimits(layout, "job_limits");
      expect(got.memory).toBe(String(limits.memoryBytes));
      expect(got.pids).toBe("16");
      expect(got.cpu).toBe(layout.version === 2 ? "200" : "2048");
      await expect(backend.create("job_limits", limits)).rejects.toMatchObject({ code: "SANDBOX_FAILED" });
      await backend.open("job_limits").remove();
      expect(await backend.list()).not.toContain("job_limits");
    });

    it("tracks joined processes and kills the whole tree", async () => {
      const cg = await backend.create("job_kill", limits);
      const child = spawnInside(cg, "sleep 1000 & sleep 1000 & setsid sleep 1000 & wait");
      await waitFor(async () => (await cg.pids()).length >= 4);
      const pids = await cg.pids();
      expect(pids).toContain(child.pid);
      expect(await cg.killAll()).toBeGreaterThanOrEqual(4);
      expect(await cg.pids()).toEqual([]);
      // Gone, or a zombie waiting for its parent (this test process) to reap it.
      for (const pid of pids) expect(await liveState(pid)).toBe("gone");
      await cg.remove();
      await cg.remove(); // idempotent
    });

    it("counts OOM kills", async () => {
      const cg = await backend.create("job_oom", limits);
      expect(await cg.oomKills()).toBe(0);
      const child = spawnInside(cg, `exec perl -e '$x = "a" x (128 * 1024 * 1024)'`);
      await new Promise((r) => child.on("exit", r));
      expect(await cg.oomKills()).toBeGreaterThan(0);
      await cg.remove();
    });

    it("treats a missing cgroup as already gone", async () => {
      const ghost = backend.open("job_never_created");
      expect(await ghost.pids()).toEqual([]);
      expect(await ghost.oomKills()).toBe(0);
      await expect(ghost.remove()).resolves.toBeUndefined();
    });
  });
}

contract(`v${layout.version} (detected)`, backendFor(layout, parent));

// A hybrid host (v1 controllers + an empty cgroup2) cannot run the v2 backend's limits, but its
// cgroup2 mount still exercises the v2 join, cgroup.kill and teardown paths for real.
const spareV2 =
  layout.version === 1
    ? parseMounts(await readFile("/proc/self/mounts", "utf8")).find((m) => m.fsType === "cgroup2")?.mountPoint
    : undefined;

describe.skipIf(!spareV2)("cgroup v2 kill and teardown on a controller-less cgroup2", () => {
  const mount = spareV2 as string;
  afterAll(async () => {
    await rmdir(join(mount, parent, "job_v2")).catch(() => undefined);
    await rmdir(join(mount, parent)).catch(() => undefined);
  });

  it("kills via cgroup.kill and removes the directory", async () => {
    const backend = createV2Backend(mount, parent);
    await mkdir(join(mount, parent, "job_v2"), { recursive: true });
    expect(await backend.list()).toEqual(["job_v2"]);
    const cg = backend.open("job_v2");
    spawnInside(cg, "sleep 1000 & sleep 1000 & wait");
    await waitFor(async () => (await cg.pids()).length >= 3);
    const pids = await cg.pids();
    await cg.remove();
    expect(await backend.list()).toEqual([]);
    for (const pid of pids) expect(await liveState(pid)).toBe("gone");
  });
});
