import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Airlock, clean, GitRepo, jobByKey, leftovers, runIdOf } from "./cli-harness.js";
import { networkLeftovers, noNetworkLeft, TestHost } from "./net-hosts.js";

/**
 * The other modes through the CLI: `egress: audit` reaches what it asks for and
 * `airlock egress suggest` turns that into an allowlist that works in enforce mode; block mode, no
 * `egress:` at all and an empty allowlist reach nothing, not even the registry.
 */
let airlock: Airlock;
let repo: GitRepo;
let registry: TestHost;
let mirror: TestHost;
let docroot: string;

const fetchBoth = `curl -fsS --max-time 20 http://registry.test/hello.json
          curl -fsS --max-time 20 --noproxy '*' http://mirror.test/hello.json`;

const auditWorkflow = `on: push
jobs:
  learn:
    runs-on: airlock
    egress: audit
    steps:
      - run: |
          ${fetchBoth}
`;

const enforceWorkflow = (allow: string[]) => `on: push
jobs:
  enforce:
    runs-on: airlock
    egress:
      allow: ${JSON.stringify(allow)}
    steps:
      - run: |
          ${fetchBoth}
`;

// Tries the registry by name (proxy and direct) and by address; each must fail.
const closedSteps = `    steps:
      - run: |
          set +e
          echo "ADDRS $(ip -4 -o addr show | awk '{print $2 "=" $4}' | tr '\\n' ' ')"
          echo "ENV proxy=[\${HTTP_PROXY:-none}]"
          for url in http://registry.test/hello.json http://\${REGISTRY}/hello.json; do
            curl -sS -f --max-time 3 -o /dev/null "$url"; echo "TRY $url exit=$?"
            curl -sS -f --max-time 3 -o /dev/null --noproxy '*' "$url"; echo "TRY-DIRECT $url exit=$?"
          done
          exit 0
        env:
          REGISTRY: __REGISTRY__
`;

const closedWorkflow = `on: push
jobs:
  none:
    runs-on: airlock
${closedSteps}
  block:
    runs-on: airlock
    egress: block
${closedSteps}
  empty:
    runs-on: airlock
    egress:
      mode: enforce
      allow: []
${closedSteps}
`;

beforeAll(async () => {
  docroot = mkdtempSync(join(tmpdir(), "airlock-e2e-docroot-"));
  writeFileSync(join(docroot, "hello.json"), '{"hello":"from a test host"}\n');
  registry = await TestHost.create("egtmreg", 44, { http: [{ port: 80, root: docroot }] });
  mirror = await TestHost.create("egtmmir", 45, { http: [{ port: 80, root: docroot }] });
  airlock = Airlock.create("egress-modes", {
    config: {
      // Own uids: leftovers() looks for live processes by uid, and other suites reuse the default range.
      sandbox: { uidBase: 330_000, uidCount: 64 },
      network: {
        pool: "10.233.0.0/16",
        hosts: { "registry.test": [registry.address], "mirror.test": [mirror.address] },
      },
    },
  });
  repo = GitRepo.create("egress-modes", {
    ".airlock/workflows/audit.yml": auditWorkflow,
    ".airlock/workflows/closed.yml": closedWorkflow.replaceAll("__REGISTRY__", registry.address),
  });
  const added = await airlock.cli("repo", "add", "e2e/egress-modes", "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await registry?.destroy();
  await mirror?.destroy();
  airlock?.cleanup();
  repo?.cleanup();
  if (docroot) rmSync(docroot, { recursive: true, force: true });
});

describe("audit mode", () => {
  it("reaches two pinned hosts, records them as audited, and suggest proposes both", async () => {
    const r = await airlock.cli("run", "e2e/egress-modes", "--workflow", ".airlock/workflows/audit.yml");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const job = jobByKey(await airlock.run(runIdOf(r.stdout)), "learn");
    expect((await airlock.logs(job.id)).match(/from a test host/g)).toHaveLength(2);
    expect(registry.requests()).toHaveLength(1);
    expect(mirror.requests()).toHaveLength(1);

    const flows = await airlock.egressFlows(job.id);
    expect(flows.map((f) => [f.host, f.port, f.decision, f.mode]).sort()).toEqual([
      ["mirror.test", 80, "audited", "audit"],
      ["registry.test", 80, "audited", "audit"],
    ]);
    for (const f of flows) expect(f.bytesDown).toBeGreaterThan(0);
    expect(await airlock.audit({ type: "egress.denied", job: job.id })).toEqual([]);

    const s = await airlock.cli("egress", "suggest", "e2e/egress-modes");
    expect(s.status, s.stderr).toBe(0);
    const allow = [...s.stdout.matchAll(/^ {4}- "([^"]+)"$/gm)].map((m) => m[1] as string);
    expect(allow.sort()).toEqual(["mirror.test:80", "registry.test:80"]);

    // The proposal, taken as is, is enough in enforce mode.
    repo.commit({ ".airlock/workflows/enforce.yml": enforceWorkflow(allow) }, "adopt the suggestion");
    const e = await airlock.cli("run", "e2e/egress-modes", "--workflow", ".airlock/workflows/enforce.yml");
    expect(e.status, e.stdout + e.stderr).toBe(0);
    const enforced = jobByKey(await airlock.run(runIdOf(e.stdout)), "enforce");
    const eflows = await airlock.egressFlows(enforced.id);
    expect(eflows.map((f) => [f.host, f.decision, f.rule]).sort()).toEqual([
      ["mirror.test", "allowed", "mirror.test:80"],
      ["registry.test", "allowed", "registry.test:80"],
    ]);
    for (const id of [job.id, enforced.id]) expect(await leftovers(airlock, id)).toEqual(clean);
  });
});

describe("block mode, no egress, an empty allowlist", () => {
  it("reach nothing, not even registry.test, by name or address", async () => {
    const before = registry.requests().length;
    const r = await airlock.cli("run", "e2e/egress-modes", "--workflow", ".airlock/workflows/closed.yml");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    const run = await airlock.run(runIdOf(r.stdout));
    const running = await airlock.audit({ type: "job.running", run: run.id });
    for (const key of ["none", "block", "empty"]) {
      const job = jobByKey(run, key);
      expect(job.conclusion, key).toBe("succeeded");
      const logs = await airlock.logs(job.id);
      // Loopback only: no interface but lo, no proxy, every try failed.
      expect(logs, key).toMatch(/^ADDRS lo=127\.0\.0\.1\/8 $/m);
      expect(logs, key).toContain("ENV proxy=[none]");
      const tries = [...logs.matchAll(/^TRY(?:-DIRECT)? \S+ exit=(\d+)$/gm)].map((m) => Number(m[1]));
      expect(tries, key).toHaveLength(4);
      for (const code of tries) expect(code, key).not.toBe(0);
      expect(running.find((e) => e.jobId === job.id)?.data.network, key).toBe("loopback only");
      expect(await leftovers(airlock, job.id)).toEqual(clean);
    }
    // No flow of any of them was recorded: there was no path to record one on.
    expect(await airlock.egressFlows(jobByKey(run, "block").id)).toEqual([]);
    expect(airlock.query("SELECT id FROM egress_flows WHERE run_id = ?", run.id)).toEqual([]);
    expect(registry.requests()).toHaveLength(before);
    expect(networkLeftovers(airlock.dataDir)).toEqual(noNetworkLeft);
  });
});
