/**
 * Real namespaces, veths and nftables. Every address used is loopback or one this file put inside
 * a namespace it created; nothing is sent anywhere else. Own table/prefix/pool, so a live
 * controller (table "airlock", prefix "alk") is never touched.
 */
import { execFile } from "node:child_process";
import { readFile, writeFile } from "node:fs/promises";
import * as net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AddressPool } from "./address-pool.js";
import { type DnsQueryRecord, DnsServer } from "./dns-server.js";
import { netnsEnterArgv } from "./enter.js";
import { anyForwardGuard, createJobNetwork, type JobNetwork, type JobNetworkOptions } from "./job-network.js";
import { listLinks, listNamespaces, reapNetworks } from "./reaper.js";

const sh = promisify(execFile);
const names = { table: "alktest", prefix: "alt" };
const pool = new AddressPool("10.251.0.0/16");
const ports = { http: 13128, transparentHttp: 13129, transparentTls: 13130 };
const DNS_PORT = 15353;
const AIRLOCK_PORT = 18443;
// A stand-in for an internal service the host can route to: its own netns and veth, outside the pool.
const SVC = { ns: "lsvc-test", hostIf: "lsvch", nsIf: "lsvcj", hostAddr: "10.254.0.1", addr: "10.254.0.2" };
const SVC_PORT = 2222;
const SVC_OTHER_PORT = 2223;

const canRun =
  process.getuid?.() === 0 &&
  (await sh("/usr/sbin/nft", ["--version"]).then(
    () => true,
    () => false,
  ));

const PROBE = `
import * as net from "node:net";
import * as dgram from "node:dgram";
import { Resolver } from "node:dns/promises";
const [mode, host, port, extra] = process.argv.slice(2);
const out = (o) => { process.stdout.write(JSON.stringify(o)); process.exit(0); };
setTimeout(() => out({ result: "timeout" }), 2500);
if (mode === "tcp") {
  const s = net.connect({ host, port: Number(port) });
  let data = "";
  s.on("connect", () => setTimeout(() => out({ result: "open", data }), 300));
  s.on("data", (d) => { data += d; });
  s.on("error", (e) => out({ result: e.code }));
} else if (mode === "udp") {
  const s = dgram.createSocket("udp4");
  s.on("message", (m) => out({ result: "reply", data: String(m) }));
  s.on("error", (e) => out({ result: e.code }));
  s.send("ping", Number(port), host, (e) => { if (e) out({ result: e.code }); });
  setTimeout(() => out({ result: "timeout" }), 1200);
} else if (mode === "dns") {
  const r = new Resolver({ timeout: 1000, tries: 1 });
  r.setServers([host + ":" + port]);
  const fn = extra === "AAAA" ? r.resolve6(process.argv[6]) : r.resolve4(process.argv[6]);
  fn.then((a) => out({ result: "ok", addresses: a }), (e) => out({ result: e.code }));
}
`;
let probePath = "";

async function probe(
  ns: JobNetwork | string,
  ...args: string[]
): Promise<{ result: string; data?: string; addresses?: string[] }> {
  const path = typeof ns === "string" ? `/run/netns/${ns}` : ns.nsPath;
  const [cmd, ...pre] = netnsEnterArgv(path);
  const { stdout } = await sh(cmd as string, [...pre, process.execPath, probePath, ...args], {
    timeout: 10_000,
  });
  return JSON.parse(stdout);
}

async function ipIn(nsName: string, ...args: string[]): Promise<string> {
  return (await sh("/usr/sbin/ip", ["-n", nsName, ...args])).stdout;
}

/** A TCP server that greets with its name; `host` is a host-side address. */
function listen(host: string, port: number, greeting: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const s = net.createServer((c) => c.end(greeting));
    s.once("error", reject);
    s.listen({ host, port }, () => resolve(s));
  });
}

function options(jobId: string, extra: Partial<JobNetworkOptions> = {}): JobNetworkOptions {
  return { jobId, pool, proxyPorts: ports, dnsPort: DNS_PORT, airlockPorts: [AIRLOCK_PORT], names, ...extra };
}

const servers: net.Server[] = [];
let forwardBefore = "";

describe.skipIf(!canRun)("job network (real namespaces)", () => {
  let a: JobNetwork;
  let b: JobNetwork;
  let dns: DnsServer;
  const queries: DnsQueryRecord[] = [];

  beforeAll(async () => {
    probePath = join(tmpdir(), `airlock-netprobe-${process.pid}.mjs`);
    await writeFile(probePath, PROBE);
    await reapNetworks(names);
    forwardBefore = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
    await sh("/usr/sbin/ip", ["netns", "del", SVC.ns]).catch(() => undefined);
    a = await createJobNetwork(options("job_netA"));
    b = await createJobNetwork(options("job_netB"));
    // The internal service: reachable from the host, in its own namespace.
    const ip = (...args: string[]) => sh("/usr/sbin/ip", args);
    await ip("netns", "add", SVC.ns);
    await ip("link", "add", SVC.hostIf, "type", "veth", "peer", "name", SVC.nsIf, "netns", SVC.ns);
    await ip("addr", "add", `${SVC.hostAddr}/30`, "dev", SVC.hostIf);
    await ip("link", "set", SVC.hostIf, "up");
    await ipIn(SVC.ns, "addr", "add", `${SVC.addr}/30`, "dev", SVC.nsIf);
    await ipIn(SVC.ns, "link", "set", SVC.nsIf, "up");
    await ipIn(SVC.ns, "link", "set", "lo", "up");
    dns = new DnsServer({
      port: DNS_PORT,
      pool,
      decide: (_job, name) =>
        name === "svc.internal.test"
          ? { allowed: true, passthrough: [{ port: SVC_PORT }] }
          : name === "loop.test" || name === "meta.test",
      resolve: async (name) => {
        const table: Record<string, string> = {
          "svc.internal.test": SVC.addr,
          "loop.test": "127.0.0.1",
          "meta.test": "169.254.169.254",
          "denied.test": SVC.addr,
        };
        const address = table[name];
        if (!address) throw Object.assign(new Error("nx"), { code: "ENOTFOUND" });
        return [{ address, ttl: 5 }];
      },
      onQuery: (q) => queries.push(q),
    });
    await dns.addJob(a);
    await dns.addJob(b);
  });

  afterAll(async () => {
    for (const s of servers) s.close();
    await dns?.close();
    await a?.destroy();
    await b?.destroy();
    await sh("/usr/sbin/ip", ["link", "del", SVC.hostIf]).catch(() => undefined);
    await sh("/usr/sbin/ip", ["netns", "del", SVC.ns]).catch(() => undefined);
    await reapNetworks(names);
    // Another installation running beside this suite (an e2e test) may have switched forwarding on
    // before we looked, or may still rely on it now; then the last of them switches it back off.
    if (forwardBefore === "0" && !(await anyForwardGuard())) {
      expect((await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim()).toBe("0");
    }
  });

  it("has lo and its veth only, a default route via the host end, and no IPv6 at all", async () => {
    const links = JSON.parse(await ipIn(a.nsName, "-j", "link", "show")) as { ifname: string }[];
    expect(links.map((l) => l.ifname).sort()).toEqual([a.jobIf, "lo"].sort());
    expect(await ipIn(a.nsName, "route", "show")).toContain(`default via ${a.hostAddr} dev ${a.jobIf}`);
    expect((await ipIn(a.nsName, "-6", "addr", "show")).trim()).toBe("");
    expect((await ipIn(a.nsName, "-6", "route", "show")).trim()).toBe("");
    const v6 = net.createServer();
    await new Promise<void>((r) => v6.listen({ host: "::1", port: 0 }, () => r()));
    servers.push(v6);
    const port = String((v6.address() as net.AddressInfo).port);
    const out = await probe(a, "tcp", "::1", port);
    expect(out.result).not.toBe("open");
    expect(a.jobAddr).toBe("10.251.0.2");
    expect(b.hostAddr).toBe("10.251.0.5");
  });

  it("cannot reach the host's loopback or other host ports", async () => {
    servers.push(await listen("127.0.0.1", 17001, "host-loopback"));
    servers.push(await listen("0.0.0.0", 17002, "host-any"));
    expect((await probe(a, "tcp", "127.0.0.1", "17001")).result).toBe("ECONNREFUSED");
    expect((await probe(a, "tcp", a.hostAddr, "17001")).result).toBe("ECONNREFUSED");
    expect((await probe(a, "tcp", a.hostAddr, "17002")).result).toBe("ECONNREFUSED");
    // …but Airlock's own endpoint port on the host end is open.
    servers.push(await listen(a.hostAddr, AIRLOCK_PORT, "airlock-api"));
    expect(await probe(a, "tcp", a.hostAddr, String(AIRLOCK_PORT))).toEqual({
      result: "open",
      data: "airlock-api",
    });
  });

  it("cannot reach another job, on either end of its veth", async () => {
    servers.push(await listen(b.hostAddr, AIRLOCK_PORT, "job-b-host-end"));
    expect((await probe(a, "tcp", b.hostAddr, String(AIRLOCK_PORT))).result).toBe("ECONNREFUSED");
    // A listener inside job B's namespace (as a job process would open).
    const [cmd, ...pre] = netnsEnterArgv(b.nsPath);
    const child = execFile(cmd as string, [
      ...pre,
      process.execPath,
      "-e",
      `require("net").createServer((c) => c.end("job-b")).listen(17003, "${b.jobAddr}"); setTimeout(() => process.exit(0), 6000);`,
    ]);
    await new Promise((r) => setTimeout(r, 400));
    expect(await probe(b, "tcp", b.jobAddr, "17003")).toEqual({ result: "open", data: "job-b" });
    expect((await probe(a, "tcp", b.jobAddr, "17003")).result).toBe("ECONNREFUSED");
    child.kill();
  });

  it("cannot reach an internal service by IP, nor another resolver; port 53 lands on Airlock", async () => {
    const svc = execFile("/usr/sbin/ip", [
      "netns",
      "exec",
      SVC.ns,
      process.execPath,
      "-e",
      `const net = require("net"), dgram = require("dgram");
       for (const p of [${SVC_PORT}, ${SVC_OTHER_PORT}]) net.createServer((c) => c.end("svc:" + p)).listen(p, "${SVC.addr}");
       for (const p of [53, 5300]) { const u = dgram.createSocket("udp4"); u.on("message", (m, r) => u.send("svc-udp", r.port, r.address)); u.bind(p, "${SVC.addr}"); }
       setTimeout(() => process.exit(0), 20000);`,
    ]);
    servers.push({ close: () => svc.kill() } as unknown as net.Server);
    await new Promise((r) => setTimeout(r, 500));
    expect(await probe(SVC.ns, "tcp", SVC.addr, String(SVC_PORT))).toEqual({
      result: "open",
      data: `svc:${SVC_PORT}`,
    });
    expect((await probe(a, "tcp", SVC.addr, String(SVC_PORT))).result).toBe("ECONNREFUSED");
    expect((await probe(a, "udp", SVC.addr, "5300")).result).not.toBe("reply");
    // A "query" to another resolver's port 53 is redirected to Airlock's resolver (which ignores junk).
    expect((await probe(a, "udp", SVC.addr, "53")).result).not.toBe("reply");
    expect((await probe(a, "dns", SVC.addr, "53", "A", "svc.internal.test")).result).toBe("ok");
    expect((await a.flows()).denied).toContainEqual({ ip: SVC.addr, proto: "tcp", port: SVC_PORT });
  });

  it("resolves allowed names through Airlock, refuses others and rebinding targets", async () => {
    const ask = (name: string, type = "A") => probe(a, "dns", a.hostAddr, "53", type, name);
    expect(await ask("svc.internal.test")).toEqual({ result: "ok", addresses: [SVC.addr] });
    expect((await ask("denied.test")).result).toBe("ENOTFOUND");
    expect((await ask("loop.test")).result).toBe("ENOTFOUND");
    expect((await ask("meta.test")).result).toBe("ENOTFOUND");
    expect((await ask("svc.internal.test", "AAAA")).result).toBe("ENODATA");
    // Directly on the resolver port too (allowed by the input chain), and over TCP via the probe's retry path.
    expect((await probe(a, "dns", a.hostAddr, String(DNS_PORT), "A", "svc.internal.test")).result).toBe("ok");
    // Port 53 of any address is Airlock's resolver for THIS job; job B's resolver socket is closed to A.
    const before = queries.length;
    expect((await probe(a, "dns", b.hostAddr, "53", "A", "svc.internal.test")).result).toBe("ok");
    expect(queries.slice(before).map((q) => q.jobId)).toEqual([a.jobId]);
    expect((await probe(a, "dns", b.hostAddr, String(DNS_PORT), "A", "svc.internal.test")).result).not.toBe(
      "ok",
    );
    const mine = queries.filter((q) => q.jobId === a.jobId);
    expect(mine.find((q) => q.name === "meta.test")).toMatchObject({
      answered: false,
      reason: "forbidden-address",
    });
    expect(mine.find((q) => q.name === "denied.test")).toMatchObject({ answered: false, reason: "denied" });
  });

  it("after the name resolved, the job reaches exactly that ip:port — and job B still does not", async () => {
    expect(await probe(a, "tcp", SVC.addr, String(SVC_PORT))).toEqual({
      result: "open",
      data: `svc:${SVC_PORT}`,
    });
    expect((await probe(a, "tcp", SVC.addr, String(SVC_OTHER_PORT))).result).toBe("ECONNREFUSED");
    expect((await probe(b, "tcp", SVC.addr, String(SVC_PORT))).result).toBe("ECONNREFUSED");
    await b.allowPassthrough(SVC.addr, SVC_OTHER_PORT);
    expect(await probe(b, "tcp", SVC.addr, String(SVC_OTHER_PORT))).toEqual({
      result: "open",
      data: `svc:${SVC_OTHER_PORT}`,
    });
    expect((await a.flows()).allowed).toContainEqual({ ip: SVC.addr, proto: "tcp", port: SVC_PORT });
    await expect(a.allowPassthrough("169.254.169.254", 80)).rejects.toThrow();
    await expect(a.allowPassthrough("169.254.169.254", 22)).rejects.toThrow(/never allowed/);
    await expect(a.allowPassthrough(b.jobAddr, 22)).rejects.toThrow(/never allowed/);
    await expect(a.allowPassthrough("127.0.0.1", 22)).rejects.toThrow(/never allowed/);
  });

  it("redirects tcp/80 and tcp/443 to any address onto the transparent proxy ports", async () => {
    servers.push(await listen(a.hostAddr, ports.transparentHttp, "proxy-http"));
    servers.push(await listen(a.hostAddr, ports.transparentTls, "proxy-tls"));
    // Destinations inside this test's own namespaces: nothing could leave even without the redirect.
    expect(await probe(a, "tcp", b.jobAddr, "80")).toEqual({ result: "open", data: "proxy-http" });
    expect(await probe(a, "tcp", SVC.addr, "443")).toEqual({ result: "open", data: "proxy-tls" });
    expect(await probe(a, "tcp", "127.0.0.1", "80")).not.toEqual({ result: "open", data: "proxy-http" });
  });

  it("a sandbox entered through nsenter (as the wrapper will) cannot open raw sockets", async () => {
    const [cmd, ...pre] = netnsEnterArgv(a.nsPath);
    const { stdout } = await sh(cmd as string, [
      ...pre,
      "/usr/bin/bwrap",
      "--ro-bind",
      "/",
      "/",
      "--dev",
      "/dev",
      "--proc",
      "/proc",
      "--unshare-user",
      "--unshare-pid",
      "--cap-drop",
      "ALL",
      "--",
      "/usr/bin/python3",
      "-c",
      `import socket
try:
    socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP); print("raw-ok")
except PermissionError: print("raw-denied")
print(open("/proc/net/route").read())`,
    ]);
    expect(stdout).toContain("raw-denied");
    // Same namespace as the job network: its routing table is the job veth's.
    expect(stdout).toContain(a.jobIf);
    expect(stdout).not.toMatch(/raw-ok/);
  });

  it("block mode: no proxy, no DNS, no forwarding; Airlock's ports only", async () => {
    const c = await createJobNetwork(options("job_netC", { mode: "block" }));
    try {
      servers.push(await listen(c.hostAddr, AIRLOCK_PORT, "airlock-api"));
      servers.push(await listen(c.hostAddr, ports.http, "proxy"));
      expect((await probe(c, "tcp", c.hostAddr, String(AIRLOCK_PORT))).result).toBe("open");
      expect((await probe(c, "tcp", c.hostAddr, String(ports.http))).result).toBe("ECONNREFUSED");
      expect((await probe(c, "tcp", SVC.addr, String(SVC_PORT))).result).toBe("ECONNREFUSED");
      expect((await probe(c, "dns", c.hostAddr, "53", "A", "svc.internal.test")).result).not.toBe("ok");
      await expect(c.allowPassthrough(SVC.addr, SVC_PORT)).rejects.toThrow(/block/);
    } finally {
      await c.destroy();
    }
  });

  it("audit mode forwards anything outside the denied ranges and records it", async () => {
    const d = await createJobNetwork(options("job_netD", { mode: "audit" }));
    try {
      expect((await probe(d, "tcp", SVC.addr, String(SVC_OTHER_PORT))).result).toBe("open");
      expect((await probe(d, "tcp", b.jobAddr, "17003")).result).toBe("ECONNREFUSED");
      const flows = await d.flows();
      expect(flows.allowed).toContainEqual({ ip: SVC.addr, proto: "tcp", port: SVC_OTHER_PORT });
      expect(flows.denied).toContainEqual({ ip: b.jobAddr, proto: "tcp", port: 17003 });
    } finally {
      await d.destroy();
    }
  });

  it("50 concurrent networks each get their own namespace; teardown leaves nothing", async () => {
    const ids = Array.from({ length: 50 }, (_, i) => `job_scale${i}`);
    const nets = await Promise.all(ids.map((id) => createJobNetwork(options(id))));
    expect(new Set(nets.map((n) => n.nsName)).size).toBe(50);
    expect(new Set(nets.map((n) => n.jobAddr)).size).toBe(50);
    expect((await listNamespaces(names)).length).toBe(50 + 2);
    // Spot check that each is wired: the last one reaches its host-end Airlock port.
    const last = nets[49] as JobNetwork;
    servers.push(await listen(last.hostAddr, AIRLOCK_PORT, "ok"));
    expect((await probe(last, "tcp", last.hostAddr, String(AIRLOCK_PORT))).result).toBe("open");
    await Promise.all(nets.map((n) => n.destroy()));
    const mine = new Set([a.nsName, b.nsName]);
    expect((await listNamespaces(names)).filter((n) => !mine.has(n))).toEqual([]);
    expect((await listLinks(names)).filter((l) => l !== a.hostIf && l !== b.hostIf)).toEqual([]);
    const table = (await sh("/usr/sbin/nft", ["list", "table", "inet", names.table])).stdout;
    for (const n of nets) expect(table).not.toContain(n.short);
    expect(pool.size).toBe(2);
  });

  it("setup and teardown time per job (sequential, median of 50)", async () => {
    const setup: number[] = [];
    const teardown: number[] = [];
    for (let i = 0; i < 50; i++) {
      const t0 = performance.now();
      const n = await createJobNetwork(options(`job_time${i}`));
      const t1 = performance.now();
      await n.destroy();
      setup.push(t1 - t0);
      teardown.push(performance.now() - t1);
    }
    const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
    console.log(
      `job network: setup median ${median(setup).toFixed(1)} ms, teardown median ${median(teardown).toFixed(1)} ms`,
    );
    expect(median(setup)).toBeLessThan(2000);
  });

  it("the reaper removes leftovers a dead controller left behind", async () => {
    const leaked = await createJobNetwork(options("job_leaked"));
    await sh("/usr/sbin/ip", ["netns", "add", "alt-abcdefgh"]);
    const report = await reapNetworks(names);
    expect(report.tableRemoved).toBe(true);
    expect(report.namespaces).toEqual(expect.arrayContaining([leaked.nsName, "alt-abcdefgh", a.nsName]));
    expect(report.links).toEqual(expect.arrayContaining([leaked.hostIf, a.hostIf]));
    expect(await listNamespaces(names)).toEqual([]);
    expect(await listLinks(names)).toEqual([]);
    await expect(sh("/usr/sbin/nft", ["list", "table", "inet", names.table])).rejects.toThrow();
    // The service namespace is not ours to reap.
    expect((await sh("/usr/sbin/ip", ["netns", "list"])).stdout).toContain(SVC.ns);
    // Destroying a network the reaper already removed is quiet.
    await leaked.destroy();
    await a.destroy();
    await b.destroy();
  });
});
