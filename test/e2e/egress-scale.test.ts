import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobView } from "../../src/controller/views.js";
import { Airlock, GitRepo, runIdOf } from "./cli-harness.js";
import { instanceNetworkNames, networkLeftovers, noNetworkLeft, TestHost } from "./net-hosts.js";

/**
 * Many job networks at once: 50 jobs, each with its own namespace, rules and proxy listeners,
 * all allowed to registry.test, all run together; afterwards nothing of this installation is
 * left in `ip netns`, `ip link` or `nft list ruleset`.
 */
const jobs = 50;
let airlock: Airlock;
let repo: GitRepo;
let registry: TestHost;
let docroot: string;

function workflow(): string {
  const lines = ["on: push", "jobs:"];
  for (let i = 1; i <= jobs; i++) {
    const key = `j${String(i).padStart(2, "0")}`;
    lines.push(
      `  ${key}:`,
      "    runs-on: airlock",
      "    egress:",
      "      allow: [registry.test]",
      "    steps:",
      "      - run: |",
      `          curl -fsS --max-time 60 http://registry.test/hello.json?job=${key}`,
      // Hold the network a little, so the jobs overlap even on a slow host.
      "          sleep 2",
    );
  }
  return `${lines.join("\n")}\n`;
}

/** The most jobs whose [startedAt, finishedAt] intervals overlap at one instant. */
function peakOverlap(views: JobView[]): number {
  const events = views.flatMap((j) => [
    [Date.parse(j.startedAt ?? ""), 1],
    [Date.parse(j.finishedAt ?? ""), -1],
  ]) as [number, number][];
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let now = 0;
  let peak = 0;
  for (const [, d] of events) {
    now += d;
    peak = Math.max(peak, now);
  }
  return peak;
}

beforeAll(async () => {
  docroot = mkdtempSync(join(tmpdir(), "airlock-e2e-docroot-"));
  writeFileSync(join(docroot, "hello.json"), '{"hello":"from registry.test"}\n');
  registry = await TestHost.create("egtsreg", 46, { http: [{ port: 80, root: docroot }] });
  airlock = Airlock.create("egress-scale", {
    config: {
      scheduler: { concurrency: jobs },
      // Own uids: leftovers() looks for live processes by uid, and other suites reuse the default range.
      sandbox: { uidBase: 340_000, uidCount: 128 },
      network: { pool: "10.234.0.0/16", hosts: { "registry.test": [registry.address] } },
    },
  });
  repo = GitRepo.create("egress-scale", { ".airlock/workflows/ci.yml": workflow() });
  const added = await airlock.cli("repo", "add", "e2e/egress-scale", "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await registry?.destroy();
  airlock?.cleanup();
  repo?.cleanup();
  if (docroot) rmSync(docroot, { recursive: true, force: true });
});

describe(`${jobs} jobs with egress at once`, () => {
  it("all reach registry.test through their own networks, and every network is gone afterwards", async () => {
    const r = await airlock.cli("run", "e2e/egress-scale", "--ref", "main", "--no-logs");
    const run = await airlock.run(runIdOf(r.stdout));
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const views = run.jobs ?? [];
    expect(views).toHaveLength(jobs);
    for (const j of views) expect(j.conclusion, j.key).toBe("succeeded");
    const peak = peakOverlap(views);
    expect(peak).toBeGreaterThanOrEqual(jobs / 2);

    // One request per job reached the registry, each through the proxy with the name as Host.
    const hits = registry.requests().filter((e) => e.path === "/hello.json");
    expect(hits).toHaveLength(jobs);
    for (const h of hits) expect(h.host).toBe("registry.test");

    // Each job had its own address.
    const running = await airlock.audit({ type: "job.running", run: run.id });
    const addrs = running.map((e) => (e.data.network as { jobAddr: string }).jobAddr);
    expect(new Set(addrs).size).toBe(jobs);
    // Every job's flow is in the store (one query for all 50), and the CLI shows it for a sample.
    const rows = airlock.query<{
      job_id: string;
      host: string;
      port: number;
      decision: string;
      bytes_down: number;
    }>("SELECT job_id, host, port, decision, bytes_down FROM egress_flows WHERE run_id = ?", run.id);
    expect(rows).toHaveLength(jobs);
    expect(new Set(rows.map((f) => f.job_id))).toEqual(new Set(views.map((j) => j.id)));
    for (const f of rows) {
      expect(f).toMatchObject({ host: "registry.test", port: 80, decision: "allowed" });
      expect(f.bytes_down).toBeGreaterThan(0);
    }
    for (const j of [views[0], views[jobs - 1]]) {
      const shown = await airlock.egressFlows(j?.id ?? "");
      expect(shown).toEqual([expect.objectContaining({ host: "registry.test", decision: "allowed" })]);
    }

    // The controller has exited: nothing of this installation is left on the host.
    expect(networkLeftovers(airlock.dataDir)).toEqual(noNetworkLeft);
    const { table, prefix } = instanceNetworkNames(airlock.dataDir);
    const ruleset = execFileSync("nft", ["list", "ruleset"], { encoding: "utf8" });
    expect(ruleset).not.toContain(table);
    expect(ruleset).not.toContain(`"${prefix}`);
    expect(execFileSync("ip", ["netns", "list"], { encoding: "utf8" })).not.toContain(`${prefix}-`);
    expect(execFileSync("ip", ["-o", "link"], { encoding: "utf8" })).not.toMatch(
      new RegExp(`: ${prefix}[a-z2-7]{8}`),
    );
  }, 300_000);
});
