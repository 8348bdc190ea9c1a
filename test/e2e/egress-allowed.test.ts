import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Airlock, clean, GitRepo, jobByKey, leftovers, runIdOf } from "./cli-harness.js";
import { buildRegistryRoot, networkLeftovers, noNetworkLeft, TestHost } from "./net-hosts.js";

/**
 * What an allowlisted job can do through Airlock's egress path, end to end through the CLI: a
 * "package registry" in a namespace this test made, pinned as `registry.test`, is reached with curl
 * through the proxy and transparently, cloned from with git, installed from with npm, and reached
 * directly on an allowlisted non-web port (passthrough). Airlock's own endpoints are called straight
 * with the proxy variables set. Every flow is in the flow log.
 */
let airlock: Airlock;
let repo: GitRepo;
let registry: TestHost;
let docroot: string;

const workflow = `on: push
jobs:
  fetch:
    runs-on: airlock
    egress:
      allow: [registry.test, "registry.test:7000"]
    permissions:
      id-token: write
    steps:
      - name: through the proxy
        run: |
          test -n "$HTTP_PROXY"
          curl -fsS --max-time 20 http://registry.test/hello.json
      - name: transparently, without the proxy
        run: curl -fsS --max-time 20 --noproxy '*' http://registry.test/hello.json
      - name: git clone
        run: |
          git clone -q http://registry.test/repo.git cloned
          echo "git: $(cat cloned/README.md)"
      - name: npm install
        run: |
          mkdir app && cd app
          npm config set registry http://registry.test/
          echo '{"name":"app","version":"1.0.0","private":true}' > package.json
          npm install --no-audit --no-fund --no-update-notifier left-pad-test@1.0.0
          node -e 'console.log("npm: [" + require("left-pad-test")("x", 4, "-") + "]")'
      - name: Airlock's own endpoints, straight past the proxy (NO_PROXY names them)
        run: |
          curl -fsS --max-time 10 -H "Authorization: bearer $ACTIONS_ID_TOKEN_REQUEST_TOKEN" \
            "$ACTIONS_ID_TOKEN_REQUEST_URL&audience=e2e" -o /tmp/token.json
          node -e 'console.log("oidc: " + require("/tmp/token.json").value.split(".").length + " parts")'
      - name: passthrough on an allowed non-web port
        run: |
          node -e '
            const s = require("net").connect(7000, "registry.test");
            s.setTimeout(10000, () => { console.error("timeout"); process.exit(2); });
            s.on("data", (d) => { console.log("tcp: " + d.toString().trim()); s.end(); process.exit(0); });
            s.on("error", (e) => { console.error(e.message); process.exit(1); });
          '
`;

beforeAll(async () => {
  docroot = buildRegistryRoot("http://registry.test");
  registry = await TestHost.create("egtareg", 41, { http: [{ port: 80, root: docroot }], tcp: [7000] });
  airlock = Airlock.create("egress-allowed", {
    config: {
      // Own uids: leftovers() looks for live processes by uid, and other suites reuse the default range.
      sandbox: { uidBase: 310_000, uidCount: 64 },
      network: { pool: "10.231.0.0/16", hosts: { "registry.test": [registry.address] } },
    },
  });
  repo = GitRepo.create("egress-allowed", { ".airlock/workflows/ci.yml": workflow });
  const added = await airlock.cli("repo", "add", "e2e/egress-allowed", "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await registry?.destroy();
  airlock?.cleanup();
  repo?.cleanup();
  if (docroot) rmSync(docroot, { recursive: true, force: true });
});

describe("an allowlisted job reaches registry.test", () => {
  it("with curl (proxied and transparent), git clone, npm install and passthrough; all flows logged", async () => {
    const r = await airlock.cli("run", "e2e/egress-allowed", "--ref", "main");
    const run = await airlock.run(runIdOf(r.stdout));
    const job = jobByKey(run, "fetch");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(job.conclusion).toBe("succeeded");

    const logs = await airlock.logs(job.id);
    expect(logs.match(/from registry\.test/g)?.length).toBe(2);
    expect(logs).toContain("git: cloned-over-dumb-http");
    expect(logs).toContain("npm: [---x]");
    expect(logs).toContain("tcp: echo-7000");
    expect(logs).toContain("oidc: 3 parts");

    // The registry saw every kind of request, always with the name as Host.
    const seen = registry.requests();
    expect(seen.filter((e) => e.path === "/hello.json").map((e) => e.host)).toEqual([
      "registry.test",
      "registry.test",
    ]);
    expect(seen.some((e) => e.path?.startsWith("/repo.git/info/refs"))).toBe(true);
    expect(seen.some((e) => e.path === "/left-pad-test")).toBe(true);
    expect(seen.some((e) => e.path === "/left-pad-test/-/left-pad-test-1.0.0.tgz")).toBe(true);
    // Passthrough is masqueraded: the registry sees the host end of its own veth, not the job.
    expect(seen.filter((e) => e.kind === "tcp").map((e) => e.from)).toEqual([registry.hostAddress]);

    const flows = await airlock.egressFlows(job.id);
    const web = flows.filter((f) => f.host === "registry.test" && f.port === 80);
    expect(web.length).toBeGreaterThanOrEqual(5);
    for (const f of web) {
      expect(f).toMatchObject({ decision: "allowed", rule: "registry.test", address: registry.address });
      expect(f.bytesDown).toBeGreaterThan(0);
      expect(f.bytesUp).toBeGreaterThan(0);
    }
    expect(new Set(web.map((f) => f.protocol))).toEqual(new Set(["http"]));
    expect(flows.filter((f) => f.decision !== "allowed")).toEqual([]);
    expect(flows).toContainEqual(
      expect.objectContaining({
        host: registry.address,
        port: 7000,
        protocol: "tcp",
        decision: "allowed",
        rule: "passthrough",
      }),
    );
    expect(await airlock.audit({ type: "egress.denied", job: job.id })).toEqual([]);

    expect(await leftovers(airlock, job.id)).toEqual(clean);
    expect(networkLeftovers(airlock.dataDir)).toEqual(noNetworkLeft);
  });
});
