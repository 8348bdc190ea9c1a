/** Resource attacks: the job is stopped or limited, the host stays fine, nothing survives. */
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectCgroups } from "../../src/sandbox/cgroups/detect.js";
import { type Harness, harness, hostProcessesOf, sh, waitFor } from "./sandbox-fixtures.js";

/** How often the kernel refused a fork because of pids.max (pids.events exists on v1 and v2). */
async function pidsLimitHits(h: Harness, jobId: string): Promise<number> {
  const layout = await detectCgroups();
  const dir = layout.version === 2 ? layout.mount : layout.mounts.pids;
  const events = await readFile(join(dir, h.cgroupName, jobId, "pids.events"), "utf8");
  return Number(/^max (\d+)/m.exec(events)?.[1] ?? 0);
}

const UID_BOMB = 202_001;
const UID_OOM = 202_002;
const UID_TREE = 202_003;

describe("sandbox limits", () => {
  let h: Harness;
  beforeAll(async () => {
    h = await harness("limits");
  });
  afterAll(async () => {
    await h?.cleanup();
  });

  it("a fork bomb is capped by pids.max, the host can still fork, and the timeout clears it", async () => {
    const pidsMax = 32;
    const sb = await h.newSandbox("bomb", UID_BOMB, {
      memoryBytes: 128 * 1024 * 1024,
      pids: pidsMax,
      cpuWeight: 10,
    });
    const cg = h.cgroups.open("job_bomb");
    // Every process keeps forking forever (perl's fork returns undef at the limit instead of exiting).
    const running = sh(sb, "perl -e 'fork while 1'", { timeoutMs: 1500 });
    let peak = 0;
    const sampler = setInterval(() => {
      cg.pids().then(
        (p) => {
          peak = Math.max(peak, p.length);
        },
        () => undefined,
      );
    }, 50);
    await new Promise((r) => setTimeout(r, 700));
    // The host is unaffected while the bomb runs.
    expect(execFileSync("/bin/echo", ["host ok"]).toString()).toBe("host ok\n");
    const limitHits = await pidsLimitHits(h, "job_bomb");
    const { result } = await running;
    clearInterval(sampler);
    expect(result.timedOut).toBe(true);
    expect(limitHits).toBeGreaterThan(0);
    expect(peak).toBeGreaterThan(4);
    expect(peak).toBeLessThanOrEqual(pidsMax);
    expect(await cg.pids()).toEqual([]);
    expect(await hostProcessesOf(UID_BOMB)).toEqual([]);
    await sb.destroy();
  });

  it("allocating past the memory limit is OOM-killed and reported", async () => {
    const sb = await h.newSandbox("oom", UID_OOM, {
      memoryBytes: 48 * 1024 * 1024,
      pids: 64,
      cpuWeight: 100,
    });
    const r = await sh(sb, `perl -e '$x = "a" x (256 * 1024 * 1024); print "allocated\\n"'`);
    expect(r.stdout).not.toContain("allocated");
    expect(r.result.oomKilled).toBe(true);
    expect(r.result.exitCode).not.toBe(0);
    // A later, modest step in the same job is fine and not blamed for the earlier OOM.
    const ok = await sh(sb, "echo fine");
    expect(ok.stdout).toBe("fine\n");
    expect(ok.result.oomKilled).toBe(false);
    await sb.destroy();
  });

  it("a timeout kills the whole tree, including background and re-parented processes", async () => {
    const sb = await h.newSandbox("tree", UID_TREE);
    const script =
      "sleep 1000 & sleep 1000 & setsid sleep 1000 & nohup sh -c 'sleep 1000' >/dev/null 2>&1 & wait";
    const started = Date.now();
    const { result } = await sh(sb, script, { timeoutMs: 700 });
    expect(result.timedOut).toBe(true);
    expect(result.exitCode).toBeNull();
    expect(result.signal).toBe("SIGKILL");
    expect(Date.now() - started).toBeLessThan(5000);
    expect(await h.cgroups.open("job_tree").pids()).toEqual([]);
    expect(await hostProcessesOf(UID_TREE)).toEqual([]);
  });

  it("cancel via AbortSignal kills the tree and reports cancelled", async () => {
    const sb = await h.newSandbox("cancel", UID_TREE + 10);
    const ac = new AbortController();
    const running = sh(sb, "sleep 1000 & sleep 1000 & wait", { signal: ac.signal });
    await waitFor(async () => (await h.cgroups.open("job_cancel").pids()).length >= 3);
    ac.abort();
    const { result } = await running;
    expect(result.cancelled).toBe(true);
    expect(result.timedOut).toBe(false);
    expect(await hostProcessesOf(UID_TREE + 10)).toEqual([]);
    // A pre-aborted signal never starts the step.
    const pre = await sh(sb, "echo should-not-run", { signal: AbortSignal.abort() });
    expect(pre.result.cancelled).toBe(true);
    expect(pre.stdout).toBe("");
  });
});
