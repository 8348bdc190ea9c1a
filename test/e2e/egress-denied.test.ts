import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Flow } from "../../src/network/proxy/flow-log.js";
import { Airlock, type CliResult, clean, GitRepo, jobByKey, leftovers, runIdOf } from "./cli-harness.js";
import { networkLeftovers, noNetworkLeft, TestHost } from "./net-hosts.js";

/**
 * Everything a job with a narrow allowlist must NOT reach, each tried from inside a real job and
 * each checked twice: it failed in the job, and Airlock recorded it (a denied flow, an
 * `egress.denied` audit event, or a refused DNS query in the controller's log).
 */
const pool = "10.232.0.0/16";
// Lowest free /30 first: the two jobs of the run get .0.2 and .0.6 (in some order).
const jobAddrs = ["10.232.0.2", "10.232.0.6"];
const peerPort = 8080;

let airlock: Airlock;
let repo: GitRepo;
let registry: TestHost;
let internal: TestHost;
/** Listens on the host's 127.0.0.1 and on a host address this test made (the registry's veth). */
const hostServers: Server[] = [];
let hostConnections = 0;
let hostPort = 0;
let docroot: string;

let result: CliResult;
let probeFlows: Flow[];
let probes: Map<string, { exit: number; out: string }>;
let probeJobId: string;
let peerJobId: string;
let peerAddr: string;
let gateway: string;

function workflow(): string {
  return `on: push
jobs:
  peer:
    runs-on: airlock
    egress:
      allow: [registry.test]
    steps:
      - run: |
          echo "PEER addr=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1)"
          node -e '
            const net = require("net");
            const s = net.createServer((c) => { console.log("PEER-" + "CONN from " + c.remoteAddress); c.end(); });
            s.listen(${peerPort}, "0.0.0.0", () => net.connect(${peerPort}, "127.0.0.1").on("connect", () => console.log("PEER " + "listening")));
            setTimeout(() => process.exit(0), 15000);
          '
  probe:
    runs-on: airlock
    egress:
      allow: [registry.test, evil.test, evil-lo.test, "evil.test:5432"]
    steps:
      - run: |
          set +e
          tcp() {
            node -e '
              const [host, port] = process.argv.slice(1);
              const s = require("net").connect({ host, port: Number(port) });
              s.setTimeout(5000, () => { console.log("timeout"); process.exit(3); });
              s.on("connect", () => { console.log("connected"); process.exit(0); });
              s.on("error", (e) => { console.log(e.code || e.message); process.exit(1); });
            ' "$1" "$2"
          }
          dnsq() {
            node -e '
              const r = new (require("dns").promises.Resolver)({ timeout: 3000, tries: 1 });
              r.setServers([process.argv[1]]);
              r.resolve4(process.argv[2]).then((a) => console.log("answer " + a.join(",")), (e) => { console.log(e.code); process.exit(1); });
            ' "$1" "$2"
          }
          probe() {
            local name=$1; shift
            local out; out=$("$@" 2>&1); local code=$?
            echo "PROBE $name exit=$code :: $(printf %s "$out" | tr '\\n' ' ' | cut -c1-300)"
          }
          c="curl -sS -f --max-time 10 -o /dev/null"
          me=$(ip -4 -o addr show scope global | awk '{print $4}' | cut -d/ -f1)
          if [ "$me" = "${jobAddrs[0]}" ]; then peer=${jobAddrs[1]}; else peer=${jobAddrs[0]}; fi
          gw=\${HTTP_PROXY#http://}; gw=\${gw%:*}
          echo "PROBE-INFO me=$me peer=$peer gw=$gw"
          sleep 2
          # Another job, running at the same time.
          probe peer-direct tcp "$peer" ${peerPort}
          probe peer-proxy $c "http://$peer:${peerPort}/"
          # An internal service the job is not allowed: by name and by address.
          probe internal-name-proxy $c http://internal.test/
          probe internal-name-transparent $c --noproxy '*' --resolve internal.test:80:${"$"}{INTERNAL} http://internal.test/
          probe internal-name-dns getent hosts internal.test
          probe internal-ip-proxy $c http://${"$"}{INTERNAL}/
          probe internal-ip-transparent $c --noproxy '*' http://${"$"}{INTERNAL}/
          probe internal-ip-port tcp ${"$"}{INTERNAL} 9000
          # The allowed registry, but directly by address on a port the allowlist does not open.
          probe registry-ip-port tcp ${"$"}{REGISTRY} 8443
          # The host: the gateway on a non-proxy port, a host address, and the host's loopback.
          probe gateway-port tcp "$gw" ${"$"}{HOSTPORT}
          probe host-addr-port tcp ${"$"}{HOSTADDR} ${"$"}{HOSTPORT}
          probe host-loopback tcp 127.0.0.1 ${"$"}{HOSTPORT}
          probe host-loopback-proxy $c -x "$HTTP_PROXY" --noproxy '' http://127.0.0.1:${"$"}{HOSTPORT}/
          # Another resolver: udp/53 lands on Airlock's, which refuses what is not allowed.
          probe dns-other-denied dnsq ${"$"}{INTERNAL} secret.internal.test
          probe dns-other-allowed dnsq ${"$"}{INTERNAL} registry.test
          # IPv6: there is none.
          probe ipv6-curl curl -6 -sS -f --max-time 5 -o /dev/null http://registry.test/hello.json
          probe ipv6-loopback tcp ::1 ${"$"}{HOSTPORT}
          probe ipv6-nat64 tcp 64:ff9b::a0fe:2b02 80
          probe ipv6-addrs sh -c 'test -z "$(cat /proc/net/if_inet6 2>/dev/null)" && echo none && exit 1'
          # Allowed names that resolve to forbidden addresses (pinned by the operator, even).
          probe evil-metadata-proxy $c http://evil.test/
          probe evil-metadata-dns getent hosts evil.test
          probe evil-loopback-proxy $c http://evil-lo.test:80/
          probe evil-metadata-transparent $c --noproxy '*' --resolve evil.test:80:169.254.169.254 http://evil.test/
          probe evil-loopback-transparent $c --noproxy '*' --resolve evil-lo.test:80:127.0.0.1 http://evil-lo.test/
          # CONNECT to a port the allowlist does not open.
          probe connect-port $c -x "$HTTPS_PROXY" https://registry.test:8443/
          # And the allowed path still works, so the refusals above are not a broken network.
          probe control $c http://registry.test/hello.json
        env:
          INTERNAL: ${internal.address}
          REGISTRY: ${registry.address}
          HOSTADDR: ${registry.hostAddress}
          HOSTPORT: "${hostPort}"
`;
}

function listen(server: Server, host: string, port: number): Promise<number> {
  return new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(port, host, () => {
      const a = server.address();
      res(typeof a === "object" && a ? a.port : 0);
    });
  });
}

beforeAll(async () => {
  docroot = mkdtempSync(join(tmpdir(), "airlock-e2e-docroot-"));
  writeFileSync(join(docroot, "hello.json"), "{}\n");
  registry = await TestHost.create("egtdreg", 42, {
    http: [
      { port: 80, root: docroot },
      { port: 8443, root: docroot },
    ],
  });
  internal = await TestHost.create("egtdint", 43, {
    http: [{ port: 80, root: "/nonexistent" }],
    tcp: [9000],
    dns: { port: 53, answer: "10.254.43.2" },
  });
  for (const host of ["127.0.0.1", registry.hostAddress]) {
    const s = createServer((c) => {
      hostConnections++;
      c.destroy();
    });
    hostServers.push(s);
    hostPort = await listen(s, host, hostPort);
  }

  airlock = Airlock.create("egress-denied", {
    config: {
      // Own uids: leftovers() looks for live processes by uid, and other suites reuse the default range.
      sandbox: { uidBase: 320_000, uidCount: 64 },
      scheduler: { concurrency: 2 },
      network: {
        pool,
        hosts: {
          "registry.test": [registry.address],
          "internal.test": [internal.address],
          "evil.test": ["169.254.169.254"],
          "evil-lo.test": ["127.0.0.1"],
        },
      },
    },
    // The resolver's refusals are logged at info.
    env: { AIRLOCK_LOG_LEVEL: "info" },
  });
  repo = GitRepo.create("egress-denied", { ".airlock/workflows/ci.yml": workflow() });
  const added = await airlock.cli("repo", "add", "e2e/egress-denied", "--source", repo.dir);
  expect(added.status, added.stderr).toBe(0);

  result = await airlock.cli("run", "e2e/egress-denied", "--ref", "main");
  const run = await airlock.run(runIdOf(result.stdout));
  probeJobId = jobByKey(run, "probe").id;
  peerJobId = jobByKey(run, "peer").id;
  const logs = await airlock.logs(probeJobId);
  probes = new Map(
    [...logs.matchAll(/^PROBE (\S+) exit=(\d+) :: (.*)$/gm)].map((m) => [
      m[1] as string,
      { exit: Number(m[2]), out: m[3] as string },
    ]),
  );
  gateway = /^PROBE-INFO .* gw=(\S+)$/m.exec(logs)?.[1] ?? "(no gateway printed)";
  probeFlows = await airlock.egressFlows(probeJobId);
  if (process.env.EGRESS_E2E_DEBUG) console.log(logs, JSON.stringify(probeFlows, null, 1), result.stderr);
  const [running] = await airlock.audit({ type: "job.running", job: peerJobId });
  peerAddr = String((running?.data.network as { jobAddr?: string } | undefined)?.jobAddr);
}, 180_000);

afterAll(async () => {
  for (const s of hostServers) s.close();
  await registry?.destroy();
  await internal?.destroy();
  airlock?.cleanup();
  repo?.cleanup();
  if (docroot) rmSync(docroot, { recursive: true, force: true });
});

function probe(name: string): { exit: number; out: string } {
  const p = probes.get(name);
  if (!p) throw new Error(`probe ${name} did not run:\n${[...probes.keys()].join(", ")}`);
  return p;
}

function denied(match: Partial<Flow>): void {
  expect(probeFlows).toContainEqual(expect.objectContaining({ ...match, decision: "denied" }));
}

describe("a job with an allowlist of registry.test cannot reach", () => {
  it("ran both jobs to the end, at the same time, and the allowed path worked", async () => {
    expect(result.status, result.stdout + result.stderr).toBe(0);
    expect(probe("control").exit).toBe(0);
    const run = await airlock.run(runIdOf(result.stdout));
    const [probeJob, peerJob] = [jobByKey(run, "probe"), jobByKey(run, "peer")];
    // The peer listened for the whole time the probe ran its peer probes.
    expect(Date.parse(peerJob.startedAt ?? "")).toBeLessThan(Date.parse(probeJob.startedAt ?? "") + 2_000);
    expect(Date.parse(peerJob.finishedAt ?? "")).toBeGreaterThan(
      Date.parse(probeJob.startedAt ?? "") + 5_000,
    );
    const peerLogs = await airlock.logs(peerJobId);
    expect(peerLogs).toContain(`PEER addr=${peerAddr}`);
    expect(peerLogs).toContain("PEER listening");
    // Its own connection over loopback is the only one it got.
    expect(peerLogs.match(/PEER-CONN from/g)).toEqual(["PEER-CONN from"]);
    expect(peerLogs).toContain("PEER-CONN from 127.0.0.1");
  });

  it("another concurrently running job's address, directly or through the proxy", () => {
    expect(jobAddrs).toContain(peerAddr);
    expect(probe("peer-direct")).toMatchObject({ exit: 1 });
    expect(probe("peer-proxy").exit).toBe(22);
    expect(probe("peer-proxy").out).toContain("403");
    denied({ host: peerAddr, port: peerPort, protocol: "tcp", rule: "nft:default-deny" });
    denied({ host: peerAddr, port: peerPort, protocol: "http" });
  });

  it("an internal service by name (not allowed) and by its address", () => {
    for (const p of [
      "internal-name-proxy",
      "internal-name-transparent",
      "internal-ip-proxy",
      "internal-ip-transparent",
    ]) {
      expect(probe(p).exit, p).toBe(22);
      expect(probe(p).out, p).toContain("403");
    }
    expect(probe("internal-name-dns").exit).not.toBe(0);
    expect(probe("internal-ip-port").exit).toBe(1);
    expect(
      probeFlows.filter((f) => f.host === "internal.test" && f.port === 80 && f.decision === "denied"),
    ).toHaveLength(2);
    denied({ host: "internal.test", port: 80, rule: "default-deny", address: null });
    denied({ host: internal.address, port: 80, rule: "default-deny" });
    denied({ host: internal.address, port: 9000, protocol: "tcp", rule: "nft:default-deny" });
    expect(internal.requests().filter((e) => e.kind !== "dns")).toEqual([]);
  });

  it("the allowed registry directly by address on a port it is not allowed on", () => {
    expect(probe("registry-ip-port").exit).toBe(1);
    denied({ host: registry.address, port: 8443, protocol: "tcp", rule: "nft:default-deny" });
  });

  it("the host: the gateway off the proxy ports, the host's own addresses, its loopback", () => {
    for (const p of ["gateway-port", "host-addr-port", "host-loopback"]) expect(probe(p).exit, p).toBe(1);
    expect(probe("host-loopback-proxy").exit).toBe(22);
    // Refused at the host end (input chain), recorded all the same.
    denied({ host: gateway, port: hostPort, protocol: "tcp", rule: "nft:default-deny" });
    denied({ host: registry.hostAddress, port: hostPort, protocol: "tcp", rule: "nft:default-deny" });
    denied({ host: "127.0.0.1", port: hostPort, protocol: "http", rule: "default-deny" });
    expect(hostConnections).toBe(0);
  });

  it("another resolver over udp/53: Airlock's resolver answers instead, and refuses", async () => {
    expect(probe("dns-other-denied")).toMatchObject({ exit: 1, out: "ENOTFOUND" });
    // What answered is Airlock (the pinned address), not the other resolver (which says 10.254.43.2).
    expect(probe("dns-other-allowed")).toMatchObject({ exit: 0, out: `answer ${registry.address}` });
    expect(internal.requests().filter((e) => e.kind === "dns")).toEqual([]);
    expect(result.stderr).toMatch(/"name":"secret\.internal\.test"[^\n]*"msg":"dns refused"/);
    const refused = await airlock.audit({ type: "egress.dns_refused", job: probeJobId });
    expect(refused.map((e) => e.data.name)).toContain("secret.internal.test");
  });

  it("anything over IPv6", () => {
    for (const p of ["ipv6-curl", "ipv6-loopback", "ipv6-nat64", "ipv6-addrs"])
      expect(probe(p).exit, p).not.toBe(0);
    expect(probeFlows.filter((f) => f.address?.includes(":"))).toEqual([]);
  });

  it("an allowed name pinned to a forbidden address (metadata, loopback)", () => {
    for (const p of ["evil-metadata-proxy", "evil-metadata-transparent", "evil-loopback-proxy"]) {
      expect(probe(p).exit, p).toBe(22);
      expect(probe(p).out, p).toContain("403");
    }
    expect(probe("evil-metadata-dns").exit).not.toBe(0);
    // 127.0.0.1 inside the job is the job's own loopback: nothing listens there.
    expect(probe("evil-loopback-transparent").exit).toBe(7);
    expect(probeFlows.filter((f) => f.host === "evil.test" && f.rule === "address:link-local")).toHaveLength(
      2,
    );
    denied({ host: "evil-lo.test", port: 80, rule: "address:loopback" });
    expect(result.stderr).toMatch(/"name":"evil\.test"[^\n]*"msg":"dns refused"/);
  });

  it("a CONNECT to a port the allowlist does not open", () => {
    expect(probe("connect-port").exit).not.toBe(0);
    expect(probe("connect-port").out).toContain("403");
    denied({ host: "registry.test", port: 8443, protocol: "connect", rule: "default-deny" });
    expect(registry.requests().filter((e) => e.port === 8443)).toEqual([]);
  });

  it("audits every denial and leaves nothing behind", async () => {
    const deniedFlows = probeFlows.filter((f) => f.decision === "denied");
    const events = await airlock.audit({ type: "egress.denied", job: probeJobId });
    expect(events.length).toBe(deniedFlows.length);
    for (const id of [probeJobId, peerJobId]) expect(await leftovers(airlock, id)).toEqual(clean);
    expect(networkLeftovers(airlock.dataDir)).toEqual(noNetworkLeft);
  });
});
