/**
 * Attacks on the network boundary from inside a real sandboxed job: a bwrap sandbox joined to a
 * job network that Airlock's EgressService built (namespace, nftables, resolver, proxy), with an
 * allowlist of `registry.test` (pinned to a test host) and one CIDR rule that opens the test
 * hosts' private range on two ports, as an operator opening an internal network would.
 *
 * Every probe runs in the job; each is checked from the attacker's side (what it got back) and
 * from the host's (what reached the test hosts and the listeners on the host). Addresses used:
 * loopback, and the test hosts' namespaces and veth host ends, all made here. Everything allowed
 * is pinned, so the controller's resolver never asks the host's DNS for anything.
 */
import { createSocket, type Socket as UdpSocket } from "node:dgram";
import { chownSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EgressService, jobNames, type ProvisionedEgress } from "../../src/network/index.js";
import type { Sandbox } from "../../src/sandbox/index.js";
import { type Db, openSqlite } from "../../src/store/database.js";
import { TestHost } from "../e2e/net-hosts.js";
import { collector, type Harness, harness } from "./sandbox-fixtures.js";

const UID = 361_001;
const POOL = "10.237.0.0/16";
const NAMES = { table: "airlock_natk", prefix: "alnk" };
const PORTS = { forward: 23128, http: 23129, tls: 23130, dns: 23053 };
/** Opened by the CIDR rule below; what listens there on the host must stay unreachable. */
const HOST_PORT = 23222;

let h: Harness;
let db: Db;
let egress: EgressService;
let provisioned: ProvisionedEgress;
let sandbox: Sandbox;
let registry: TestHost;
let internal: TestHost;
let docroot: string;
const hostTcp: Server[] = [];
let hostTcpConnections = 0;
let hostUdp: UdpSocket;
let hostUdpPort = 0;
const hostUdpMessages: string[] = [];
let results: Map<string, Record<string, unknown>>;
let stdout = "";
let stderr = "";

/** Runs inside the job (node, no packages): every probe prints `RESULT {"name":…}`. */
const PROBE = String.raw`
import * as net from "node:net";
import * as dgram from "node:dgram";
import * as tls from "node:tls";
import { spawnSync } from "node:child_process";
const E = process.env;
const [PROXY_HOST, PROXY_PORT] = E.HTTP_PROXY.replace("http://", "").split(":");
const GW = PROXY_HOST;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const report = (name, o) => console.log("RESULT " + JSON.stringify({ name, ...o }));

/** Sends bytes (all at once, or piece by piece), collects what comes back until close or ms. */
function raw(host, port, data, { ms = 3000, pieces = 0 } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ host, port: Number(port) });
    s.setNoDelay(true);
    const chunks = [];
    let done = false;
    const finish = (how) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      s.destroy();
      const text = Buffer.concat(chunks).toString("latin1");
      resolve({ how, status: Number(/^HTTP\/1\.[01] (\d{3})/.exec(text)?.[1] ?? 0), head: text.slice(0, 400) });
    };
    const timer = setTimeout(() => finish("timeout"), ms);
    s.on("data", (c) => chunks.push(c));
    s.on("error", (e) => finish(e.code || "error"));
    s.on("close", () => finish("closed"));
    s.on("connect", async () => {
      const buf = Buffer.isBuffer(data) ? data : Buffer.from(data, "latin1");
      if (!pieces) return s.write(buf);
      for (let i = 0; i < buf.length && !done; i += pieces) {
        s.write(buf.subarray(i, i + pieces));
        await sleep(2);
      }
    });
  });
}

function dnsQuery(nameBytes, type) {
  const labels = [];
  for (const l of nameBytes) labels.push(Buffer.from([l.length]), l);
  const q = Buffer.concat([Buffer.from([0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]), ...labels, Buffer.from([0, type >> 8, type & 255, 0, 1])]);
  return q;
}
const labelsOf = (name) => name.split(".").map((l) => Buffer.from(l, "latin1"));

function parseDns(buf) {
  if (!buf || buf.length < 12) return { rcode: -1, answers: [] };
  const rcode = buf[3] & 15;
  const an = buf.readUInt16BE(6);
  let p = 12;
  const skipName = () => {
    while (p < buf.length) {
      const l = buf[p];
      if (l === 0) { p++; return; }
      if ((l & 0xc0) === 0xc0) { p += 2; return; }
      p += 1 + l;
    }
  };
  for (let i = 0; i < buf.readUInt16BE(4); i++) { skipName(); p += 4; }
  const answers = [];
  for (let i = 0; i < an && p < buf.length; i++) {
    skipName();
    const type = buf.readUInt16BE(p);
    const len = buf.readUInt16BE(p + 8);
    const data = buf.subarray(p + 10, p + 10 + len);
    answers.push(type === 1 && len === 4 ? Array.from(data).join(".") : "type" + type);
    p += 10 + len;
  }
  return { rcode, answers };
}

function dnsUdp(server, port, query, ms = 2000) {
  return new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    const timer = setTimeout(() => { s.close(); resolve({ how: "timeout", rcode: -1, answers: [] }); }, ms);
    s.on("message", (m) => { clearTimeout(timer); s.close(); resolve({ how: "reply", ...parseDns(m) }); });
    s.on("error", (e) => { clearTimeout(timer); resolve({ how: e.code, rcode: -1, answers: [] }); });
    s.send(query, port, server);
  });
}

function dnsTcp(server, port, query, ms = 3000) {
  return new Promise((resolve) => {
    const s = net.connect({ host: server, port });
    let buf = Buffer.alloc(0);
    const timer = setTimeout(() => { s.destroy(); resolve({ how: "timeout", rcode: -1, answers: [] }); }, ms);
    s.on("connect", () => { const len = Buffer.alloc(2); len.writeUInt16BE(query.length); s.write(Buffer.concat([len, query])); });
    s.on("data", (c) => {
      buf = Buffer.concat([buf, c]);
      if (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
        clearTimeout(timer); s.destroy(); resolve({ how: "reply", ...parseDns(buf.subarray(2)) });
      }
    });
    s.on("error", (e) => { clearTimeout(timer); resolve({ how: e.code, rcode: -1, answers: [] }); });
  });
}

function udpSend(host, port, text, broadcast = false) {
  return new Promise((resolve) => {
    const s = dgram.createSocket("udp4");
    s.on("error", (e) => { s.close(); resolve(e.code); });
    s.bind(0, () => {
      if (broadcast) s.setBroadcast(true);
      s.send(text, port, host, (e) => { setTimeout(() => { s.close(); resolve(e ? e.code : "sent"); }, 100); });
    });
  });
}

function py(code) {
  const r = spawnSync("/usr/bin/python3", ["-c", code], { encoding: "utf8", timeout: 10000 });
  return (r.stdout + r.stderr).trim().split("\n").pop();
}

/** A ClientHello as Node's TLS client writes it, captured on the job's own loopback. */
async function clientHello(servername) {
  const got = [];
  const server = net.createServer((s) => s.on("data", (c) => got.push(c)));
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const c = tls.connect({ host: "127.0.0.1", port: server.address().port, servername, rejectUnauthorized: false });
  c.on("error", () => {});
  await sleep(300);
  c.destroy();
  server.close();
  return Buffer.concat(got);
}

const HE = E.HOSTEND, HP = E.HOSTPORT, INT = E.INTERNAL, REG = E.REGISTRY;
const P = [PROXY_HOST, PROXY_PORT];
const get = (url, extra = "") => "GET " + url + " HTTP/1.1\r\nHost: x\r\n" + extra + "Connection: close\r\n\r\n";
const connectReq = (target) => "CONNECT " + target + " HTTP/1.1\r\nHost: " + target + "\r\n\r\n";

// The host itself, through the proxy, on an address the CIDR rule opens.
report("connect-host-end", await raw(...P, connectReq(HE + ":" + HP)));
report("http-host-end", await raw(...P, get("http://" + HE + ":" + HP + "/")));
report("connect-host-end-mapped", await raw(...P, connectReq("[::ffff:" + HE + "]:" + HP)));
report("connect-gateway", await raw(...P, connectReq(GW + ":" + HP)));
// The host's loopback, in every spelling of 127.0.0.1 (and 0.0.0.0, which is the host too).
for (const t of ["2130706433", "0177.0.0.1", "0x7f.1", "127.1", "127.000.000.001", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]", "[::1]", "0.0.0.0", "0", "localhost"]) {
  report("connect-lo " + t, await raw(...P, connectReq(t + ":" + HP)));
}
for (const u of ["http://2130706433:HP/", "http://0x7f.1:HP/", "http://0177.0.0.1:HP/", "http://[::ffff:7f00:1]:HP/", "http://0:HP/", "http://registry.test@127.0.0.1:HP/", "http://%31%32%37.0.0.1:HP/"]) {
  report("http-lo " + u, await raw(...P, get(u.replace("HP", HP))));
}
// Names: userinfo, Host vs absolute URI, percent-encoding, odd CONNECT authorities, long names.
report("userinfo", await raw(...P, get("http://registry.test@internal.test/")));
report("userinfo-port", await raw(...P, get("http://registry.test:80@internal.test/")));
report("absolute-vs-host", await raw(...P, "GET http://internal.test/ HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n"));
report("percent-host", await raw(...P, get("http://%69nternal.test/")));
report("wildcard-suffix", await raw(...P, get("http://registry.test.internal.test/")));
report("evil-prefix", await raw(...P, get("http://evil-registry.test/")));
for (const t of ["registry.test:80@internal.test:80", "registry.test:80:80", "internal.test%2f:80", "[registry.test]:80", "registry.test", "registry.test:99999", "a".repeat(300) + ".test:80", "internal.test.:80", "INTERNAL.TEST:80"]) {
  report("connect-odd " + t.slice(0, 40), await raw(...P, connectReq(t)));
}
report("connect-nul", await raw(...P, "CONNECT internal.test\0.registry.test:80 HTTP/1.1\r\n\r\n"));
report("smuggle-cl-te", await raw(...P, "POST http://registry.test/hello.json HTTP/1.1\r\nHost: registry.test\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://internal.test/ HTTP/1.1\r\nHost: internal.test\r\n\r\n"));
report("header-overflow", await raw(...P, "GET http://registry.test/hello.json HTTP/1.1\r\nHost: registry.test\r\nX-Big: " + "a".repeat(40000) + "\r\n\r\n"));

// Transparent HTTP: the job dials the internal host's address; the Host header decides.
report("tp-host-mismatch", await raw(INT, 80, "GET /hello.json HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n"));
report("tp-host-denied", await raw(INT, 80, "GET / HTTP/1.1\r\nHost: internal.test\r\nConnection: close\r\n\r\n"));
report("tp-http10-no-host", await raw(INT, 80, "GET / HTTP/1.0\r\n\r\n"));
report("tp-two-hosts", await raw(INT, 80, "GET / HTTP/1.1\r\nHost: registry.test\r\nHost: internal.test\r\nConnection: close\r\n\r\n"));
report("tp-host-decimal", await raw(INT, 80, "GET / HTTP/1.1\r\nHost: 2130706433\r\nConnection: close\r\n\r\n"));
report("tp-host-mapped", await raw(INT, 80, "GET / HTTP/1.1\r\nHost: [::ffff:" + HE + "]\r\nConnection: close\r\n\r\n"));
report("tp-absolute", await raw(INT, 80, "GET http://internal.test/ HTTP/1.1\r\nHost: registry.test\r\nConnection: close\r\n\r\n"));
report("tp-upgrade", await raw(INT, 80, "GET / HTTP/1.1\r\nHost: registry.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n"));
report("tp-connect", await raw(INT, 80, connectReq("internal.test:80")));

// Transparent TLS: the job dials the internal host; the SNI decides, and the proxy resolves it.
report("tls-sni-allowed-other-ip", await raw(INT, 443, await clientHello("registry.test"), { ms: 1500 }));
report("tls-sni-split", await raw(INT, 443, await clientHello("registry.test."), { ms: 3000, pieces: 7 }));
report("tls-sni-denied", await raw(INT, 443, await clientHello("internal.test"), { ms: 1500 }));
report("tls-sni-ip", await raw(INT, 443, await clientHello("127.0.0.1"), { ms: 1500 }));
report("tls-no-sni", await raw(INT, 443, await clientHello(undefined), { ms: 1500 }));
report("tls-garbage", await raw(INT, 443, "\x16\x03\x01\x00\x05hello garbage", { ms: 1500 }));

// DNS: record types, reverse lookups of internal ranges, other resolvers, TCP, names with NUL.
const A = 1, PTR = 12, TXT = 16, AAAA = 28, ANY = 255;
report("dns-a", await dnsUdp(GW, 53, dnsQuery(labelsOf("registry.test"), A)));
report("dns-txt", await dnsUdp(GW, 53, dnsQuery(labelsOf("registry.test"), TXT)));
report("dns-any", await dnsUdp(GW, 53, dnsQuery(labelsOf("registry.test"), ANY)));
report("dns-aaaa", await dnsUdp(GW, 53, dnsQuery(labelsOf("registry.test"), AAAA)));
report("dns-ptr-internal", await dnsUdp(GW, 53, dnsQuery(labelsOf(INT.split(".").reverse().join(".") + ".in-addr.arpa"), PTR)));
report("dns-ptr-host", await dnsUdp(GW, 53, dnsQuery(labelsOf("1.0.0.127.in-addr.arpa"), PTR)));
report("dns-denied", await dnsUdp(GW, 53, dnsQuery(labelsOf("internal.test"), A)));
report("dns-denied-txt", await dnsUdp(GW, 53, dnsQuery(labelsOf("exfil-data.internal.test"), TXT)));
report("dns-nul", await dnsUdp(GW, 53, dnsQuery([Buffer.from("internal\0"), Buffer.from("test")], A)));
report("dns-dotted-label", await dnsUdp(GW, 53, dnsQuery([Buffer.from("internal.test")], A)));
report("dns-tcp-other-resolver", await dnsTcp(INT, 53, dnsQuery(labelsOf("registry.test"), A)));
report("dns-tcp-denied", await dnsTcp(INT, 53, dnsQuery(labelsOf("internal.test"), A)));
report("dns-other-port", await dnsUdp(INT, 5353, dnsQuery(labelsOf("internal.test"), A)));
report("dns-other-port-tcp", await raw(INT, 5353, "x", { ms: 1500 }));
// Many TCP connections to the resolver: it keeps a few, not a controller's worth of descriptors.
{
  const socks = [];
  let closed = 0;
  for (let i = 0; i < 48; i++) {
    const s = net.connect({ host: GW, port: 53 });
    s.on("error", () => {});
    s.on("close", () => closed++);
    socks.push(s);
  }
  await sleep(1000);
  report("dns-tcp-flood", { closed, open: socks.length - closed });
  for (const s of socks) s.destroy();
}

// Other protocols.
report("icmp-raw", { out: py("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_RAW,socket.IPPROTO_ICMP)\ns.sendto(b'\\x08\\x00\\xf7\\xff\\x00\\x00\\x00\\x00',('" + INT + "',0))\nprint('SENT')") });
report("icmp-ping-socket", { out: py("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM,socket.IPPROTO_ICMP)\ns.sendto(b'\\x08\\x00\\x00\\x00\\x00\\x00\\x00\\x00',('" + INT + "',0))\nprint('SENT')") });
report("packet-socket", { out: py("import socket\ns=socket.socket(socket.AF_PACKET,socket.SOCK_RAW,0)\nprint('OPENED')") });
report("sctp", { out: py("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_STREAM,132)\ns.settimeout(3)\ns.connect(('" + INT + "',9000))\nprint('CONNECTED')") });
report("udplite", { out: py("import socket\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM,136)\ns.sendto(b'x',('" + INT + "',5353))\ns.settimeout(2)\nprint(s.recv(100))") });
report("ipv6-socket", { out: py("import socket\ns=socket.socket(socket.AF_INET6,socket.SOCK_STREAM)\ns.settimeout(3)\ns.connect(('fe80::1%" + E.JOBIF + "'," + HP + ",0,0))\nprint('CONNECTED')") });
report("bindtodevice-loopback", { out: py("import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_BINDTODEVICE,b'" + E.JOBIF + "')\ns.settimeout(3)\ns.connect(('127.0.0.1'," + HP + "))\nprint('CONNECTED')") });
report("tcp-host-end", await raw(HE, HP, "x", { ms: 1500 }));
report("tcp-gateway", await raw(GW, HP, "x", { ms: 1500 }));
report("tcp-internal", await raw(INT, 9000, "x", { ms: 1500 }));
// An allowed name on a non-web port whose DNS points into a private range the allowlist does not
// open for that port: the resolver must not open passthrough to it.
{
  const { lookup } = await import("node:dns/promises");
  const a = await lookup("rebind.test", { family: 4 }).then((x) => x.address, (e) => e.code);
  report("passthrough-rebind", { address: a, ...(/^\d/.test(a) ? await raw(a, 7100, "x", { ms: 1500 }) : {}) });
}
const token = "airlock-udp-" + process.pid;
const jobBroadcast = E.JOBADDR.replace(/\d+$/, (n) => String(Number(n) + 1));
for (const [name, host, bc] of [["udp-host-end", HE], ["udp-gateway", GW], ["udp-broadcast", "255.255.255.255", true], ["udp-subnet-broadcast", jobBroadcast, true], ["udp-multicast-all-hosts", "224.0.0.1"], ["udp-multicast", "239.255.10.10"], ["udp-loopback-host", "127.0.0.1"]]) {
  report(name, { send: await udpSend(host, Number(E.UDPPORT), token + " " + name, bc) });
}
console.log("PROBES-DONE");
`;

function listenTcp(server: Server, host: string, port: number): Promise<void> {
  return new Promise((res, rej) => {
    server.once("error", rej);
    server.listen(port, host, () => res());
  });
}

beforeAll(async () => {
  docroot = mkdtempSync(join(tmpdir(), "airlock-netattack-docroot-"));
  writeFileSync(join(docroot, "hello.json"), '{"hello":"registry"}\n');
  registry = await TestHost.create("natkreg", 61, {
    http: [{ port: 80, root: docroot }],
    tcp: [443, 7000],
  });
  internal = await TestHost.create("natkint", 62, {
    http: [{ port: 80, root: docroot }],
    tcp: [443, 7100, 9000, HOST_PORT],
    dns: { port: 5353, answer: "10.254.62.2" },
  });
  // Services of the host itself: on loopback and on an address in the range the CIDR rule opens.
  for (const host of ["127.0.0.1", internal.hostAddress]) {
    const s = createServer((c) => {
      hostTcpConnections++;
      c.destroy();
    });
    hostTcp.push(s);
    await listenTcp(s, host, HOST_PORT);
  }
  // Receives only: any datagram the job manages to deliver to the host (unicast, broadcast, multicast).
  hostUdp = createSocket({ type: "udp4", reuseAddr: true });
  hostUdp.on("message", (m) => hostUdpMessages.push(m.toString()));
  await new Promise<void>((r) => hostUdp.bind(0, "0.0.0.0", () => r()));
  hostUdpPort = hostUdp.address().port;

  db = await openSqlite(":memory:");
  egress = await EgressService.start({
    db,
    logger: pino({ level: "silent" }),
    pool: POOL,
    ports: PORTS,
    names: NAMES,
    airlockPorts: [],
    hosts: { "registry.test": [registry.address], "internal.test": [internal.address] },
    // Not pinned: a name whose DNS the job's attacker controls, pointing at the internal host.
    resolver: async (name) => (name === "rebind.test" ? [internal.address] : []),
  });
  provisioned = await egress.provision({
    jobId: "job_netattack",
    runId: "run_netattack",
    runnerId: "rnr_netattack",
    mode: "enforce",
    allow: [
      "registry.test",
      "registry.test:7000",
      "rebind.test:7100",
      `10.254.0.0/16:${HOST_PORT}`,
      "10.254.0.0/16:9000",
    ],
  });

  h = await harness("netattack");
  await h.driver.preflight();
  sandbox = await h.driver.create({
    jobId: "job_netattack",
    workspaceDir: join(h.rootDir, "job_netattack"),
    uid: UID,
    limits: { memoryBytes: 512 * 1024 * 1024, pids: 256, cpuWeight: 100 },
    network: { enterArgv: provisioned.enterArgv, resolvConf: provisioned.resolvConf },
  });
  const probe = join(sandbox.workspaceDir, "probe.mjs");
  writeFileSync(probe, PROBE);
  chownSync(probe, UID, UID);
  const jobIf = jobNames("job_netattack", NAMES).jobIf;
  const sink = collector();
  const result = await sandbox.exec(
    {
      argv: ["/usr/bin/node", "/workspace/probe.mjs"],
      env: {
        ...provisioned.env,
        PATH: "/usr/bin:/bin",
        HOSTEND: internal.hostAddress,
        HOSTPORT: String(HOST_PORT),
        INTERNAL: internal.address,
        REGISTRY: registry.address,
        UDPPORT: String(hostUdpPort),
        JOBADDR: provisioned.jobAddr,
        JOBIF: jobIf,
      },
      timeoutMs: 240_000,
    },
    sink,
  );
  stdout = sink.stdout;
  stderr = sink.stderr;
  if (process.env.NETATTACK_DEBUG) console.log(stdout, stderr, result);
  results = new Map(
    [...stdout.matchAll(/^RESULT (.*)$/gm)].map((m) => {
      const r = JSON.parse(m[1] as string) as Record<string, unknown>;
      return [String(r.name), r];
    }),
  );
  // Late datagrams.
  await new Promise((r) => setTimeout(r, 300));
}, 300_000);

afterAll(async () => {
  await sandbox?.destroy().catch(() => undefined);
  await h?.cleanup();
  await provisioned?.release().catch(() => undefined);
  await egress?.close().catch(() => undefined);
  await db?.destroy();
  for (const s of hostTcp) s.close();
  hostUdp?.close();
  await registry?.destroy();
  await internal?.destroy();
  if (docroot) rmSync(docroot, { recursive: true, force: true });
});

function r(name: string): Record<string, unknown> {
  const v = results.get(name);
  if (!v) throw new Error(`probe ${name} did not run:\n${stdout.slice(-2000)}\n${stderr.slice(-2000)}`);
  return v;
}

/** What reached the test hosts: HTTP requests, TCP connections by port, DNS queries. */
const reached = (host: TestHost, kind: string, port?: number) =>
  host.requests().filter((e) => e.kind === kind && (port === undefined || e.port === port));

describe("network attacks from a sandboxed job (allowlist: registry.test, 10.254.0.0/16 on two ports)", () => {
  it("ran every probe", () => {
    expect(stdout, stderr).toContain("PROBES-DONE");
  });

  it("the host itself is never reached through the proxy, even where a CIDR rule covers its address", () => {
    for (const p of ["connect-host-end", "http-host-end", "connect-host-end-mapped"]) {
      expect(r(p).status, p).toBe(403);
      expect(r(p).head, p).toContain("address:host");
    }
    expect(r("connect-gateway").status).toBe(403);
    expect(hostTcpConnections).toBe(0);
  });

  it("every spelling of the host's loopback is refused, by the proxy and the forward listener", () => {
    for (const name of [...results.keys()].filter((n) => /^(connect|http)-lo /.test(n))) {
      expect(r(name).status, name).toBe(403);
    }
    expect(hostTcpConnections).toBe(0);
  });

  it("name tricks (userinfo, Host vs URI, percent-encoding, suffixes, odd authorities) never reach a denied host", () => {
    for (const p of [
      "userinfo",
      "userinfo-port",
      "absolute-vs-host",
      "percent-host",
      "wildcard-suffix",
      "evil-prefix",
    ]) {
      expect(r(p).status, p).toBe(403);
    }
    for (const name of [...results.keys()].filter((n) => n.startsWith("connect-odd "))) {
      expect([400, 403], name).toContain(r(name).status);
    }
    expect(r("connect-nul").status).not.toBe(200);
    expect(r("smuggle-cl-te").status).toBe(400);
    expect(r("header-overflow").status).toBe(431);
    expect(reached(internal, "http")).toEqual([]);
  });

  it("transparent HTTP goes where the Host header says, and only if it is allowed and unambiguous", () => {
    expect(r("tp-host-mismatch").status).toBe(200);
    expect(reached(registry, "http").filter((e) => e.path === "/hello.json").length).toBeGreaterThanOrEqual(
      1,
    );
    for (const p of ["tp-host-denied", "tp-host-decimal", "tp-host-mapped"]) expect(r(p).status, p).toBe(403);
    for (const p of ["tp-http10-no-host", "tp-two-hosts", "tp-absolute"]) expect(r(p).status, p).toBe(400);
    expect(r("tp-upgrade").status).toBe(501);
    expect(r("tp-connect").status).toBe(405);
    expect(reached(internal, "http")).toEqual([]);
    // Only the one request the mismatch probe made got through, with the allowed name as Host.
    expect(reached(registry, "http").map((e) => e.host)).toEqual(["registry.test"]);
  });

  it("transparent TLS goes where the SNI says (resolved by the proxy), never to the address dialled", () => {
    // Two allowed ClientHellos (one whole, one in 7-byte pieces with a trailing dot) reached the
    // registry though the job dialled the internal host; nothing else reached either.
    expect(reached(registry, "tcp", 443)).toHaveLength(2);
    expect(reached(internal, "tcp", 443)).toEqual([]);
    for (const p of ["tls-sni-denied", "tls-sni-ip", "tls-no-sni", "tls-garbage"]) {
      expect(r(p).how, p).toBe("closed");
      expect(r(p).head, p).toBe("");
    }
  });

  it("DNS answers A for allowed names only, nothing else, and never from another resolver", () => {
    expect(r("dns-a")).toMatchObject({ rcode: 0, answers: [registry.address] });
    for (const p of ["dns-txt", "dns-any", "dns-aaaa"])
      expect(r(p), p).toMatchObject({ rcode: 0, answers: [] });
    for (const p of [
      "dns-ptr-internal",
      "dns-ptr-host",
      "dns-denied",
      "dns-denied-txt",
      "dns-nul",
      "dns-dotted-label",
    ]) {
      expect(r(p), p).toMatchObject({ how: "reply", rcode: 3, answers: [] });
    }
    // TCP/53 to another resolver is Airlock's resolver: the pinned answer, and the same refusals.
    expect(r("dns-tcp-other-resolver")).toMatchObject({ rcode: 0, answers: [registry.address] });
    expect(r("dns-tcp-denied")).toMatchObject({ rcode: 3, answers: [] });
    // Another resolver on another port is not reachable at all.
    expect(r("dns-other-port").how).toBe("timeout");
    expect(r("dns-other-port-tcp").how).not.toBe("closed");
    expect(reached(internal, "dns")).toEqual([]);
  });

  it("a flood of TCP connections to the resolver is cut down to a few", () => {
    expect(r("dns-tcp-flood").open as number).toBeLessThanOrEqual(16);
  });

  it("no ICMP, raw or packet sockets, SCTP, UDP-Lite, IPv6, or loopback through the veth", () => {
    for (const p of ["icmp-raw", "icmp-ping-socket", "packet-socket"]) {
      expect(String(r(p).out), p).toMatch(/Error/);
    }
    for (const p of ["sctp", "udplite", "ipv6-socket", "bindtodevice-loopback"]) {
      expect(String(r(p).out), p).not.toMatch(/^(CONNECTED|b')/);
    }
    expect(r("tcp-host-end").how).not.toBe("closed");
    expect(r("tcp-gateway").how).not.toBe("closed");
    expect(r("tcp-internal").how).not.toBe("closed");
    expect(reached(internal, "tcp")).toEqual([]);
    expect(hostTcpConnections).toBe(0);
  });

  it("an allowed name resolving into a private range opens no passthrough there", () => {
    expect(r("passthrough-rebind").how).not.toBe("closed");
    expect(reached(internal, "tcp", 7100)).toEqual([]);
  });

  it("no datagram reaches the host: unicast, broadcast, multicast", () => {
    expect(hostUdpMessages.filter((m) => m.startsWith("airlock-udp-"))).toEqual([]);
  });
});
