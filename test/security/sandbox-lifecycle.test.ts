/** Teardown and crash recovery: nothing of a job may outlive destroy() or a predecessor's crash. */
import { spawn } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBwrapDriver } from "../../src/sandbox/index.js";
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
});
