/** Teardown and crash recovery: nothing of a job may outlive destroy() or a predecessor's crash. */
import { spawn } from "node:child_process";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectCgroups } from "../../src/sandbox/cgroups/detect.js";
import { backendFor } from "../../src/sandbox/cgroups/index.js";
import { createBwrapDriver, type Sandbox } from "../../src/sandbox/index.js";
import {
  collector,
  type Harness,
  harness,
  hostProcessesOf,
  isAlive,
  LIMITS,
  sh,
  waitFor,
} from "./sandbox-fixtures.js";

const UID = 203_001;
const layout = await detectCgroups();

/** The cgroup a sandbox's steps run in, seen from the host (a step sees only its cgroup namespace). */
async function cgroupOf(sb: Sandbox, uid: number): Promise<string> {
  const running = sh(sb, "sleep 3");
  let found: string | undefined;
  // Read while the step lives: under load a process listed a moment ago may already be gone.
  await waitFor(async () => {
    for (const pid of await hostProcessesOf(uid)) {
      try {
        found = /\/airlock-test-life-\d+\/([^/\n]+)$/m.exec(readFileSync(`/proc/${pid}/cgroup`, "utf8"))?.[1];
      } catch {
        // Exited between the listing and the read.
      }
      if (found) return true;
    }
    return false;
  });
  await running;
  if (!found) throw new Error(`no process of uid ${uid} was in a job cgroup`);
  return found;
}

describe("sandbox lifecycle", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness("life");
    await h.driver.preflight();
  });
  afterAll(async () => {
    await h?.cleanup();
  });

  it("streams output as it is produced and pipes stdin", async () => {
    const sb = await h.newSandbox("stream", UID);
    const arrivals: { at: number; text: string }[] = [];
    const started = Date.now();
    await sb.exec(
      { argv: ["/bin/sh", "-c", "echo first; sleep 1; echo second"], env: {} },
      { write: (_s, chunk) => arrivals.push({ at: Date.now() - started, text: chunk.toString() }) },
    );
    const first = arrivals.find((a) => a.text.includes("first"));
    const second = arrivals.find((a) => a.text.includes("second"));
    expect(first && second && second.at - first.at).toBeGreaterThan(500);
    const sink = collector();
    await sb.exec(
      { argv: ["/usr/bin/tr", "a-z", "A-Z"], env: {}, stdin: Readable.from(["piped in\n"]) },
      sink,
    );
    expect(sink.stdout).toBe("PIPED IN\n");
    await sb.destroy();
  });

  it("prepares a private workspace and validates specs", async () => {
    const sb = await h.newSandbox("ws", UID + 1);
    const st = statSync(sb.workspaceDir);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([UID + 1, UID + 1, 0o700]);
    const r = await sh(sb, 'echo "$HOME $(pwd) $(whoami) $(hostname)"');
    expect(r.stdout).toBe("/workspace/.home /workspace runner job_ws\n");
    const bad = (over: object) =>
      h.driver.create({
        jobId: "job_bad",
        workspaceDir: join(h.rootDir, "job_bad"),
        uid: UID + 2,
        limits: LIMITS,
        ...over,
      });
    await expect(bad({ jobId: "../etc" })).rejects.toMatchObject({ code: "SANDBOX_FAILED" });
    await expect(bad({ uid: 0 })).rejects.toMatchObject({ code: "SANDBOX_FAILED" });
    await expect(bad({ workspaceDir: "/etc" })).rejects.toMatchObject({ code: "SANDBOX_FAILED" });
    await expect(bad({ uid: UID + 1 })).rejects.toMatchObject({ code: "SANDBOX_FAILED" }); // uid in use
    await sb.destroy();
  });

  it("destroy() during a step leaves no cgroup, workspace or process, and is idempotent", async () => {
    const sb = await h.newSandbox("destroy", UID + 3);
    const running = sh(sb, "sleep 1000 & (sleep 1000 &) ; echo x > /workspace/f; wait");
    await waitFor(async () => (await hostProcessesOf(UID + 3)).length >= 3);
    await sb.destroy();
    expect((await running).result.cancelled).toBe(true);
    expect(await h.cgroups.list()).not.toContain("job_destroy");
    expect(existsSync(sb.workspaceDir)).toBe(false);
    expect(await hostProcessesOf(UID + 3)).toEqual([]);
    await sb.destroy();
    await expect(sh(sb, "true")).rejects.toMatchObject({ code: "SANDBOX_FAILED" });
  });

  it("reap() from a new driver cleans up after a crashed predecessor", async () => {
    const sb = await h.newSandbox("crashed", UID + 4);
    // The "crash": a step is running and the object is dropped without destroy().
    const orphan = sh(sb, "sleep 1000 & sleep 1000 & wait").catch(() => undefined);
    await waitFor(async () => (await h.cgroups.open("job_crashed").pids()).length >= 3);
    // A wrapper that died before joining its cgroup is found by its environment marker.
    const stray = spawn("/usr/bin/sleep", ["1000"], {
      env: { AIRLOCK_SANDBOX_ROOT: h.rootDir },
      stdio: "ignore",
    });
    await waitFor(() => isAlive(stray.pid as number));

    const successor = createBwrapDriver({ rootDir: h.rootDir, cgroupName: h.cgroupName });
    const report = await successor.reap();
    expect(report.cgroupsRemoved).toBeGreaterThanOrEqual(1);
    expect(report.workspacesRemoved).toBeGreaterThanOrEqual(1);
    // At least the stray and the orphaned bwrap; killing bwrap takes its whole pid namespace along.
    expect(report.processesKilled).toBeGreaterThanOrEqual(2);
    await orphan;
    await waitFor(() => stray.exitCode !== null || stray.signalCode !== null);
    expect(await h.cgroups.list()).toEqual([]);
    expect(existsSync(sb.workspaceDir)).toBe(false);
    expect(await hostProcessesOf(UID + 4)).toEqual([]);
    // Reaping an already clean state finds nothing.
    expect(await successor.reap()).toEqual({ cgroupsRemoved: 0, processesKilled: 0, workspacesRemoved: 0 });
  });
  it("a job claims a standby slot: its first step starts from a launcher already in the job's cgroup, which has the job's limits", async () => {
    // The first create() of a driver finds the pool empty and fills it; the next one claims.
    const first = await h.newSandbox("pool-a", UID + 5);
    const standby = async () => (await h.cgroups.list()).find((n) => n.startsWith("standby-"));
    await waitFor(async () => {
      const name = await standby();
      return name !== undefined && (await h.cgroups.open(name).pids()).length === 1;
    });
    const slot = (await standby()) as string;
    const [waiting] = await h.cgroups.open(slot).pids();
    expect(waiting).toBeGreaterThan(0);
    const limits = { memoryBytes: 96 * 1024 * 1024, pids: 77, cpuWeight: 100 };
    const sb = await h.newSandbox("pool-b", UID + 6, limits);
    // cgroup v1 renames the slot after the job; v2 cannot rename, so the slot's name stays.
    const cgroupName = layout.version === 1 ? "job_pool-b" : slot;
    expect(await h.cgroups.list()).toContain(cgroupName);
    const cg = h.cgroups.open(cgroupName);
    // The launcher that waited in the slot is the one that now waits for this job's first step.
    expect(await cg.pids()).toEqual([waiting]);
    expect(await cgroupOf(sb, UID + 6)).toBe(cgroupName);
    const pidsMax =
      layout.version === 2
        ? join(layout.mount, h.cgroupName, cgroupName, "pids.max")
        : join(layout.mounts.pids, h.cgroupName, cgroupName, "pids.max");
    expect(readFileSync(pidsMax, "utf8").trim()).toBe("77");
    await sb.destroy();
    await first.destroy();
    expect(await h.cgroups.list()).not.toContain(cgroupName);
    expect(await hostProcessesOf(UID + 6)).toEqual([]);
  });

  it("with more steps to come, the next launcher waits in the job's cgroup; a killed step takes it along and the next step still runs", async () => {
    const sb = await h.newSandbox("next", UID + 7);
    const cg = h.cgroups.open(await cgroupOf(sb, UID + 7));
    const one = await sh(sb, "echo one", { expectMore: true });
    expect(one.stdout).toBe("one\n");
    // Only the launcher for step two is left in the cgroup, as root, not running anything yet.
    await waitFor(async () => (await cg.pids()).length === 1);
    const [launcher] = await cg.pids();
    expect(readFileSync(`/proc/${launcher}/status`, "utf8")).toMatch(/^Uid:\s+0\s/m);
    const two = await sh(sb, "echo two; sleep 30", { expectMore: true, timeoutMs: 300 });
    expect(two.result.timedOut).toBe(true);
    await waitFor(() => !isAlive(launcher as number));
    const three = await sh(sb, "echo three; id -u");
    expect(three.stdout).toBe("three\n1001\n");
    await sb.destroy();
    expect(await hostProcessesOf(UID + 7)).toEqual([]);
  });

  it("close() retires the standby launchers and removes their cgroups", async () => {
    const driver = createBwrapDriver({ rootDir: h.rootDir, cgroupName: `${h.cgroupName}-close` });
    const cgroups = backendFor(await detectCgroups(), `${h.cgroupName}-close`);
    const sb = await driver.create({
      jobId: "job_close",
      workspaceDir: join(h.rootDir, "job_close"),
      uid: UID + 8,
      limits: LIMITS,
    });
    const slot = async () => (await cgroups.list()).find((n) => n.startsWith("standby-"));
    await waitFor(async () => {
      const name = await slot();
      return name !== undefined && (await cgroups.open(name).pids()).length === 1;
    });
    const [standby] = await cgroups.open((await slot()) as string).pids();
    await sb.destroy();
    await driver.close();
    expect(await cgroups.list().catch(() => [])).toEqual([]);
    await waitFor(() => !isAlive(standby as number));
  });
});
