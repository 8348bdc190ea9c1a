import { createHash, randomBytes } from "node:crypto";
import type { Server as HttpServer } from "node:http";
import {
  createServer as createNetServer,
  type Server as NetServer,
  connect as netConnect,
  type Socket,
} from "node:net";
import { createServer as createTlsServer, connect as tlsConnect } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createAddressGuard } from "./address-guard.js";
import { compilePolicy, type EgressPolicyInput } from "./allowlist.js";
import { EgressProxy, type EgressProxyOptions, type JobEgress } from "./proxy-server.js";
import {
  captureClientHello,
  closeServer,
  connectVia,
  echoHttpServer,
  echoTcpServer,
  fakeResolver,
  httpVia,
  listen,
  MemorySink,
  readUntilClose,
  roundTrip,
  rulesWithoutLoopback,
  selfSignedCert,
} from "./test-support.js";
import { systemResolver } from "./upstream.js";

const names = {
  "registry.test": ["127.0.0.1"],
  "other.test": ["127.0.0.1"],
  "echo.test": ["127.0.0.1"],
  "cdn-a.test": ["127.0.0.1"],
  "cdn-b.test": ["127.0.0.1"],
  "a.wild.test": ["127.0.0.1"],
  "x.y.wild.test": ["127.0.0.1"],
  "wild.test": ["127.0.0.1"],
  // DNS rebinding: an allowed name that answers with the cloud metadata address.
  "rebind.test": ["169.254.169.254"],
  // Some answers forbidden, some not: only the permitted one is used.
  "mixed.test": ["169.254.169.254", "127.0.0.1"],
};

let httpUp: HttpServer;
let tcpUp: NetServer & { received: Buffer[] };
let httpPort: number;
let tcpPort: number;

beforeAll(async () => {
  httpUp = echoHttpServer();
  tcpUp = echoTcpServer();
  httpPort = await listen(httpUp);
  tcpPort = await listen(tcpUp);
});
afterAll(async () => {
  await closeServer(httpUp);
  await closeServer(tcpUp);
});

interface Harness {
  proxy: EgressProxy;
  sink: MemorySink;
  forward: number;
  http: number;
  tls: number;
  job: JobEgress;
}

const harnesses: Harness[] = [];
afterEach(async () => {
  for (const h of harnesses.splice(0)) await h.proxy.close();
});

async function start(
  policy: EgressPolicyInput,
  opts: Partial<EgressProxyOptions> & { tlsUpstreamPort?: number } = {},
): Promise<Harness> {
  const sink = new MemorySink();
  const job: JobEgress = { jobId: "job_t", runId: "run_t", runnerId: "rnr_t", policy: compilePolicy(policy) };
  const proxy = new EgressProxy({
    jobForClient: (addr) => (addr === "127.0.0.1" ? job : undefined),
    sink,
    resolver: fakeResolver(names),
    guard: createAddressGuard({ rules: rulesWithoutLoopback }),
    ...opts,
  });
  const forward = (await proxy.listen({ role: "forward", host: "127.0.0.1", port: 0 })).port;
  const http = (await proxy.listen({ role: "http", host: "127.0.0.1", port: 0, upstreamPort: httpPort }))
    .port;
  const tls = (
    await proxy.listen({
      role: "tls",
      host: "127.0.0.1",
      port: 0,
      upstreamPort: opts.tlsUpstreamPort ?? tcpPort,
    })
  ).port;
  const h = { proxy, sink, forward, http, tls, job };
  harnesses.push(h);
  return h;
}

describe("forward proxy: plain HTTP", () => {
  it("forwards an allowed GET and counts its bytes", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] });
    const res = await httpVia(h.forward, `http://registry.test:${httpPort}/pkg?x=1`);
    expect(res.status).toBe(200);
    const seen = JSON.parse(res.body);
    expect(seen).toMatchObject({ method: "GET", url: "/pkg?x=1" });
    expect(seen.headers.host).toBe(`registry.test:${httpPort}`);
    expect(res.headers["x-upstream"]).toBe("1");
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({
      jobId: "job_t",
      runId: "run_t",
      runnerId: "rnr_t",
      host: "registry.test",
      address: "127.0.0.1",
      port: httpPort,
      protocol: "http",
      decision: "allowed",
      rule: `registry.test:${httpPort}`,
      mode: "enforce",
    });
    expect(flow?.bytesUp).toBeGreaterThan(50);
    expect(flow?.bytesDown).toBeGreaterThan(res.body.length);
    expect(flow?.connectMs).toBeGreaterThanOrEqual(0);
    expect(flow?.error).toBeUndefined();
  });

  it("strips hop-by-hop and proxy headers and adds nothing identifying", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] });
    const res = await httpVia(h.forward, `http://user:pw@registry.test:${httpPort}/`, {
      headers: {
        "proxy-authorization": "Basic c2VjcmV0",
        connection: "x-private, keep-alive",
        "x-private": "drop me",
        "x-keep": "keep me",
        host: "spoofed.test",
      },
    });
    const seen = JSON.parse(res.body).headers as Record<string, string>;
    expect(seen["x-keep"]).toBe("keep me");
    for (const h of [
      "proxy-authorization",
      "x-private",
      "via",
      "x-forwarded-for",
      "forwarded",
      "authorization",
    ]) {
      expect(seen[h]).toBeUndefined();
    }
    // The URL's authority names the destination, not a Host header sent alongside it.
    expect(seen.host).toBe(`registry.test:${httpPort}`);
    // A response header the upstream's Connection names is hop-by-hop too.
    expect(res.headers["x-upstream"]).toBe("1");
    expect(res.headers["x-hop"]).toBeUndefined();
  });

  it("forwards a request body", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] });
    const body = Buffer.alloc(100_000, 1);
    const res = await httpVia(h.forward, `http://registry.test:${httpPort}/upload`, { method: "POST", body });
    expect(JSON.parse(res.body)).toMatchObject({ method: "POST", length: 100_000 });
    const [flow] = await h.sink.waitFor(1);
    expect(flow?.bytesUp).toBeGreaterThan(100_000);
  });

  it("denies a host no rule lists with 403 naming the host and rule, and logs it", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] });
    const res = await httpVia(h.forward, `http://other.test:${httpPort}/`);
    expect(res.status).toBe(403);
    expect(res.body).toBe(`airlock egress: other.test:${httpPort} is not allowed (rule: default-deny)\n`);
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({
      host: "other.test",
      port: httpPort,
      decision: "denied",
      rule: "default-deny",
      address: null,
      bytesUp: 0,
      bytesDown: 0,
      connectMs: null,
    });
  });

  it("refuses https:// and origin-form requests", async () => {
    const h = await start({ allow: ["registry.test"] });
    expect((await httpVia(h.forward, "https://registry.test/")).status).toBe(400);
    expect((await httpVia(h.forward, "/", { headers: { host: "registry.test" } })).status).toBe(400);
  });

  it("answers 502 when an allowed destination does not resolve", async () => {
    const h = await start({ allow: ["nowhere.test"] });
    const res = await httpVia(h.forward, "http://nowhere.test/");
    expect(res.status).toBe(502);
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({ decision: "allowed", error: "ENOTFOUND" });
  });
});

describe("forward proxy: CONNECT", () => {
  it("tunnels to an allowed host:port and passes bytes verbatim", async () => {
    const h = await start({ allow: [`echo.test:${tcpPort}`] });
    const t = await connectVia(h.forward, `echo.test:${tcpPort}`);
    expect(t.status).toBe(200);
    const payload = Buffer.from(Array.from({ length: 70_000 }, (_, i) => i % 256));
    const back = await roundTrip(t.socket as Socket, payload);
    expect(back.equals(payload)).toBe(true);
    (t.socket as Socket).end();
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({
      protocol: "connect",
      host: "echo.test",
      address: "127.0.0.1",
      port: tcpPort,
      decision: "allowed",
      bytesUp: 70_000,
      bytesDown: 70_000,
    });
  });

  it("a server that speaks first is heard only after the 200, byte for byte", async () => {
    const greeting = "SSH-2.0-airlock-test\r\n";
    const speaker = createNetServer((s) => s.end(greeting));
    const port = await listen(speaker);
    try {
      const h = await start({ allow: [`echo.test:${port}`] });
      const raw = netConnect({ host: "127.0.0.1", port: h.forward });
      raw.write(`CONNECT echo.test:${port} HTTP/1.1\r\nHost: echo.test:${port}\r\n\r\n`);
      const { data } = await readUntilClose(raw);
      const text = data.toString("latin1");
      expect(text.startsWith("HTTP/1.1 200 ")).toBe(true);
      expect(text.slice(text.indexOf("\r\n\r\n") + 4)).toBe(greeting);
    } finally {
      await closeServer(speaker);
    }
  });

  it("a large download to a slow reader arrives intact and fully counted", async () => {
    // The relay reuses one read buffer; a client that lags must never see it overwritten.
    const payload = randomBytes(6 * 1024 * 1024);
    const source = createNetServer((s) => s.end(payload));
    const port = await listen(source);
    try {
      const h = await start({ allow: [`echo.test:${port}`] });
      // A raw client: Node's CONNECT helper would drop bytes that share a read with the 200.
      const socket = netConnect({ host: "127.0.0.1", port: h.forward });
      socket.write(`CONNECT echo.test:${port} HTTP/1.1\r\nHost: echo.test:${port}\r\n\r\n`);
      const chunks: Buffer[] = [];
      socket.on("data", (c: Buffer) => {
        chunks.push(c);
        socket.pause();
        setTimeout(() => socket.resume(), chunks.length % 7 === 0 ? 5 : 0);
      });
      await new Promise((r) => socket.once("end", r));
      socket.end();
      const all = Buffer.concat(chunks);
      const bodyAt = all.indexOf("\r\n\r\n") + 4;
      expect(all.subarray(0, 13).toString()).toBe("HTTP/1.1 200 ");
      const got = all.subarray(bodyAt);
      expect(got.length).toBe(payload.length);
      expect(createHash("sha256").update(got).digest("hex")).toBe(
        createHash("sha256").update(payload).digest("hex"),
      );
      const [flow] = await h.sink.waitFor(1);
      expect(flow?.bytesDown).toBe(payload.length);
    } finally {
      await closeServer(source);
    }
  });

  it("denies a port the rule does not list", async () => {
    const h = await start({ allow: [`echo.test:${tcpPort}`] });
    const t = await connectVia(h.forward, `echo.test:${httpPort}`);
    expect(t.status).toBe(403);
    expect(t.body).toContain("rule: default-deny");
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({
      protocol: "connect",
      port: httpPort,
      decision: "denied",
      rule: "default-deny",
    });
  });

  it("a portless rule means 80 and 443 only", async () => {
    const h = await start({ allow: ["echo.test"] });
    expect((await connectVia(h.forward, `echo.test:${tcpPort}`)).status).toBe(403);
  });

  it("matches wildcards below the domain, not the domain itself", async () => {
    const h = await start({ allow: [`*.wild.test:${tcpPort}`] });
    const ok1 = await connectVia(h.forward, `a.wild.test:${tcpPort}`);
    const ok2 = await connectVia(h.forward, `X.Y.Wild.Test.:${tcpPort}`);
    const no = await connectVia(h.forward, `wild.test:${tcpPort}`);
    expect([ok1.status, ok2.status, no.status]).toEqual([200, 200, 403]);
    ok1.socket?.destroy();
    ok2.socket?.destroy();
    const flows = await h.sink.waitFor(3);
    expect(flows.find((f) => f.host === "x.y.wild.test")).toMatchObject({ rule: `*.wild.test:${tcpPort}` });
  });

  it("decides IP literals by address: denied unless a rule lists the address", async () => {
    const listed = await start({ allow: [`127.0.0.1:${tcpPort}`] });
    const ok = await connectVia(listed.forward, `127.0.0.1:${tcpPort}`);
    expect(ok.status).toBe(200);
    ok.socket?.destroy();
    const unlisted = await start({ allow: [`echo.test:${tcpPort}`] });
    expect((await connectVia(unlisted.forward, `127.0.0.1:${tcpPort}`)).status).toBe(403);
    expect((await connectVia(unlisted.forward, `[::ffff:127.0.0.1]:${tcpPort}`)).status).toBe(403);
  });

  it("refuses a malformed CONNECT target", async () => {
    const h = await start({ allow: ["echo.test"] });
    expect((await connectVia(h.forward, "echo.test")).status).toBe(400);
  });
});

describe("address guard in the proxy", () => {
  it("refuses an allowed name that resolves to the metadata address (DNS rebinding)", async () => {
    const h = await start({ allow: [`rebind.test:${tcpPort}`, `rebind.test:${httpPort}`] });
    const t = await connectVia(h.forward, `rebind.test:${tcpPort}`);
    expect(t.status).toBe(403);
    expect(t.body).toContain("rule: address:link-local");
    expect((await httpVia(h.forward, `http://rebind.test:${httpPort}/`)).status).toBe(403);
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({
      decision: "denied",
      rule: "address:link-local",
      address: "169.254.169.254",
    });
  });

  it("connects only to the permitted address of a mixed answer", async () => {
    const h = await start({ allow: [`mixed.test:${tcpPort}`] });
    const t = await connectVia(h.forward, `mixed.test:${tcpPort}`);
    expect(t.status).toBe(200);
    t.socket?.destroy();
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({ decision: "allowed", address: "127.0.0.1" });
  });

  it("with the default guard, a name that resolves to 127.0.0.1 is refused", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] }, { guard: createAddressGuard() });
    const res = await httpVia(h.forward, `http://registry.test:${httpPort}/`);
    expect(res.status).toBe(403);
    expect(res.body).toContain("address:loopback");
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({ decision: "denied", rule: "address:loopback", address: "127.0.0.1" });
  });

  it("with the default guard, listing 127.0.0.1 explicitly does not open it", async () => {
    const h = await start({ allow: [`127.0.0.1:${tcpPort}`] }, { guard: createAddressGuard() });
    const t = await connectVia(h.forward, `127.0.0.1:${tcpPort}`);
    expect(t.status).toBe(403);
    expect(t.body).toContain("address:loopback");
  });

  it("audit mode does not open forbidden addresses", async () => {
    const h = await start({ mode: "audit" });
    const t = await connectVia(h.forward, `rebind.test:${tcpPort}`);
    expect(t.status).toBe(403);
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({ decision: "denied", rule: "address:link-local", mode: "audit" });
  });
});

describe("modes", () => {
  it("audit allows everything and records it as audited", async () => {
    const h = await start({ mode: "audit", allow: [`registry.test:${httpPort}`] });
    expect((await httpVia(h.forward, `http://other.test:${httpPort}/`)).status).toBe(200);
    expect((await httpVia(h.forward, `http://registry.test:${httpPort}/`)).status).toBe(200);
    const t = await connectVia(h.forward, `echo.test:${tcpPort}`);
    expect(t.status).toBe(200);
    t.socket?.destroy();
    const flows = await h.sink.waitFor(3);
    expect(flows.map((f) => [f.host, f.decision, f.rule]).sort()).toEqual([
      ["echo.test", "audited", "mode:audit"],
      ["other.test", "audited", "mode:audit"],
      ["registry.test", "audited", `registry.test:${httpPort}`],
    ]);
  });

  it("block denies everything", async () => {
    const h = await start({ mode: "block" });
    const t = await connectVia(h.forward, `echo.test:${tcpPort}`);
    expect(t.status).toBe(403);
    expect(t.body).toContain("mode:block");
    expect((await httpVia(h.forward, `http://registry.test:${httpPort}/`)).status).toBe(403);
    expect((await httpVia(h.http, "/", { headers: { host: "registry.test" } })).status).toBe(403);
    const flows = await h.sink.waitFor(3);
    expect(flows.every((f) => f.decision === "denied" && f.rule === "mode:block")).toBe(true);
  });
});

describe("transparent HTTP", () => {
  it("decides by the Host header and forwards to the resolved name, port 80 (here the test port)", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] });
    const res = await httpVia(h.http, "/simple", { headers: { host: "registry.test" } });
    expect(res.status).toBe(200);
    expect(JSON.parse(res.body)).toMatchObject({ url: "/simple", headers: { host: "registry.test" } });
    const denied = await httpVia(h.http, "/", { headers: { host: "other.test" } });
    expect(denied.status).toBe(403);
    const flows = await h.sink.waitFor(2);
    expect(flows.map((f) => [f.host, f.decision, f.protocol])).toEqual([
      ["registry.test", "allowed", "http"],
      ["other.test", "denied", "http"],
    ]);
  });

  it("decides every request on a kept-alive connection, not just the first", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] });
    const s = netConnect(h.http, "127.0.0.1");
    const got = readUntilClose(s, 2000);
    s.write(
      "GET /one HTTP/1.1\r\nHost: registry.test\r\n\r\nGET /two HTTP/1.1\r\nHost: other.test\r\nConnection: close\r\n\r\n",
    );
    const text = (await got).data.toString();
    expect(text).toMatch(/^HTTP\/1\.1 200/);
    expect(text).toContain("HTTP/1.1 403");
    expect(text).toContain("other.test");
  });

  it("refuses a request without Host, and CONNECT", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] });
    const s = netConnect(h.http, "127.0.0.1");
    const got = readUntilClose(s, 2000);
    s.write("GET / HTTP/1.1\r\n\r\n");
    expect((await got).data.toString()).toMatch(/^HTTP\/1\.1 400/);
    expect((await connectVia(h.http, `registry.test:${httpPort}`)).status).toBe(405);
  });
});

describe("transparent TLS", () => {
  it("routes by SNI and replays the ClientHello verbatim", async () => {
    const h = await start({ allow: [`echo.test:${tcpPort}`] });
    const hello = await captureClientHello("echo.test");
    tcpUp.received.length = 0;
    const s = netConnect(h.tls, "127.0.0.1");
    const back = await roundTrip(s, hello);
    expect(back.equals(hello)).toBe(true);
    expect(Buffer.concat(tcpUp.received).equals(hello)).toBe(true);
    s.destroy();
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({
      protocol: "tls",
      host: "echo.test",
      decision: "allowed",
      bytesUp: hello.length,
    });
  });

  it("reassembles a ClientHello that arrives a byte at a time", async () => {
    const h = await start({ allow: [`echo.test:${tcpPort}`] });
    const hello = await captureClientHello("echo.test");
    const s = netConnect(h.tls, "127.0.0.1");
    s.setNoDelay(true);
    const back = new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => {
        chunks.push(c);
        if (Buffer.concat(chunks).length >= hello.length) resolve(Buffer.concat(chunks));
      });
    });
    for (let i = 0; i < hello.length; i += 97) s.write(hello.subarray(i, i + 97));
    expect((await back).equals(hello)).toBe(true);
    s.destroy();
  });

  const cert = selfSignedCert(["echo.test", "other.test"]);
  it.skipIf(!cert)(
    "a real TLS client reaches an allowed SNI; another name on the same address is cut",
    async () => {
      const { key, cert: pem } = cert as { key: string; cert: string };
      const tlsUp = createTlsServer({ key, cert: pem }, (s) => {
        s.on("error", () => {});
        s.pipe(s);
      });
      const tlsPort = await listen(tlsUp);
      try {
        const h = await start({ allow: [`echo.test:${tlsPort}`] }, { tlsUpstreamPort: tlsPort });
        const ok = tlsConnect({ host: "127.0.0.1", port: h.tls, servername: "echo.test", ca: pem });
        await new Promise<void>((resolve, reject) => {
          ok.once("secureConnect", resolve);
          ok.once("error", reject);
        });
        expect(ok.authorized).toBe(true);
        const back = await roundTrip(ok, Buffer.from("ping over TLS"));
        expect(back.toString()).toBe("ping over TLS");
        ok.end();

        // other.test is on the same upstream address and the certificate covers it: only the proxy stops it.
        const no = tlsConnect({ host: "127.0.0.1", port: h.tls, servername: "other.test", ca: pem });
        const outcome = await new Promise<string>((resolve) => {
          no.once("secureConnect", () => resolve("connected"));
          no.once("error", (e: Error & { code?: string }) => resolve(e.code ?? "error"));
          no.once("close", () => resolve("closed"));
        });
        expect(outcome).not.toBe("connected");

        const none = tlsConnect({
          host: "127.0.0.1",
          port: h.tls,
          ca: pem,
          checkServerIdentity: () => undefined,
        });
        const outcome2 = await new Promise<string>((resolve) => {
          none.once("secureConnect", () => resolve("connected"));
          none.once("error", () => resolve("error"));
          none.once("close", () => resolve("closed"));
        });
        expect(outcome2).not.toBe("connected");

        const flows = await h.sink.waitFor(3);
        expect(flows.map((f) => [f.host, f.decision, f.rule]).sort()).toEqual(
          [
            ["", "denied", "no-sni"],
            ["echo.test", "allowed", `echo.test:${tlsPort}`],
            ["other.test", "denied", "default-deny"],
          ].sort(),
        );
        const allowed = flows.find((f) => f.decision === "allowed");
        expect(allowed?.bytesUp).toBeGreaterThan(100);
        expect(allowed?.bytesDown).toBeGreaterThan(100);
      } finally {
        await closeServer(tlsUp);
      }
    },
  );

  it("closes a connection that sends no SNI, and one that is not TLS", async () => {
    const h = await start({ mode: "audit" });
    const s1 = netConnect(h.tls, "127.0.0.1");
    const r1 = readUntilClose(s1, 3000);
    s1.write(await captureClientHello());
    const s2 = netConnect(h.tls, "127.0.0.1");
    const r2 = readUntilClose(s2, 3000);
    s2.write("GET / HTTP/1.1\r\nHost: echo.test\r\n\r\n");
    expect(await r1).toEqual({ data: Buffer.alloc(0), closed: true });
    expect(await r2).toEqual({ data: Buffer.alloc(0), closed: true });
    const flows = await h.sink.waitFor(2);
    expect(flows.map((f) => f.rule).sort()).toEqual(["invalid-client-hello", "no-sni"]);
  });
});

describe("limits", () => {
  it("answers 431 to oversized headers", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] }, { limits: { maxHeaderBytes: 4096 } });
    const res = await httpVia(h.forward, `http://registry.test:${httpPort}/`, {
      headers: { "x-big": "a".repeat(8000) },
    });
    expect(res.status).toBe(431);
  });

  it("cuts a client that dribbles its headers (slowloris)", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] }, { limits: { headersTimeoutMs: 300 } });
    const s = netConnect(h.forward, "127.0.0.1");
    const got = readUntilClose(s, 5000);
    s.write("GET http://registry.test/ HTTP/1.1\r\nX-Slow: ");
    const t0 = Date.now();
    const r = await got;
    expect(r.closed).toBe(true);
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it("cuts a TLS client that never finishes its ClientHello", async () => {
    const h = await start({ mode: "audit" }, { limits: { headersTimeoutMs: 300 } });
    const s = netConnect(h.tls, "127.0.0.1");
    const got = readUntilClose(s, 5000);
    s.write(Buffer.from([0x16, 0x03, 0x01, 0x02]));
    expect((await got).closed).toBe(true);
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({
      decision: "denied",
      rule: "invalid-client-hello",
      error: "ClientHello timeout",
    });
  });

  it("caps open connections per job", async () => {
    const h = await start({ allow: [`echo.test:${tcpPort}`] }, { limits: { maxConnectionsPerJob: 2 } });
    const a = await connectVia(h.forward, `echo.test:${tcpPort}`);
    const b = await connectVia(h.forward, `echo.test:${tcpPort}`);
    expect([a.status, b.status]).toEqual([200, 200]);
    expect(h.proxy.connections("job_t")).toBe(2);
    await expect(connectVia(h.forward, `echo.test:${tcpPort}`)).rejects.toThrow();
    const flows = await h.sink.waitFor(1);
    expect(flows[0]).toMatchObject({ decision: "denied", rule: "limit:connections" });
    a.socket?.destroy();
    b.socket?.destroy();
    await new Promise((r) => setTimeout(r, 50));
    expect(h.proxy.connections("job_t")).toBe(0);
  });

  it("survives a client that resets while its destination is being resolved", async () => {
    const slow = fakeResolver(names);
    const h = await start(
      { allow: [`echo.test:${tcpPort}`] },
      { resolver: (host) => new Promise((r) => setTimeout(() => r(slow(host)), 100)) },
    );
    const s = netConnect(h.forward, "127.0.0.1");
    await new Promise((r) => s.once("connect", r));
    s.write(`CONNECT echo.test:${tcpPort} HTTP/1.1\r\nHost: echo.test\r\n\r\n`);
    await new Promise((r) => setTimeout(r, 20));
    s.resetAndDestroy();
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({ decision: "allowed", error: "client gone" });
    const t = await connectVia(h.forward, `echo.test:${tcpPort}`);
    expect(t.status).toBe(200);
    t.socket?.destroy();
  });

  it("closes connections no job claims", async () => {
    const h = await start({ allow: ["registry.test"] }, { jobForClient: () => undefined });
    await expect(httpVia(h.forward, "http://registry.test/")).rejects.toThrow();
    expect(h.sink.flows).toEqual([]);
  });

  it("closeJob() cuts one job's tunnels", async () => {
    const h = await start({ allow: [`echo.test:${tcpPort}`] });
    const t = await connectVia(h.forward, `echo.test:${tcpPort}`);
    const closed = readUntilClose(t.socket as Socket, 2000);
    h.proxy.closeJob("job_other");
    h.proxy.closeJob("job_t");
    expect((await closed).closed).toBe(true);
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({ jobId: "job_t", decision: "allowed" });
  });

  it("close() cuts open tunnels and records their flows", async () => {
    const h = await start({ allow: [`echo.test:${tcpPort}`] });
    const t = await connectVia(h.forward, `echo.test:${tcpPort}`);
    await roundTrip(t.socket as Socket, Buffer.from("x"));
    const closed = readUntilClose(t.socket as Socket, 2000);
    await h.proxy.close();
    expect((await closed).closed).toBe(true);
    const [flow] = await h.sink.waitFor(1);
    expect(flow).toMatchObject({ decision: "allowed", bytesUp: 1, bytesDown: 1 });
  });
});

describe("attacks on the proxy", () => {
  /** Raw bytes to a listener; everything it answers until it closes. */
  async function rawVia(port: number, data: string, timeoutMs = 3000): Promise<string> {
    const s = netConnect(port, "127.0.0.1");
    const got = readUntilClose(s, timeoutMs);
    s.write(data);
    const { data: out } = await got;
    s.destroy();
    return out.toString("latin1");
  }

  it("pipelined requests on one connection cannot open more upstreams than the job's limit", async () => {
    let open = 0;
    let most = 0;
    const slow = createNetServer((s) => {
      open++;
      most = Math.max(most, open);
      s.on("error", () => {});
      s.once("close", () => open--);
      s.once("data", () =>
        setTimeout(() => s.end("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"), 300),
      );
    });
    const port = await listen(slow);
    try {
      const h = await start({ allow: [`registry.test:${port}`] }, { limits: { maxConnectionsPerJob: 4 } });
      const one = `GET http://registry.test:${port}/ HTTP/1.1\r\nHost: registry.test\r\n\r\n`;
      const text = await rawVia(h.forward, one.repeat(60), 1500);
      expect(most).toBeLessThanOrEqual(4);
      expect(text).toContain("HTTP/1.1 200 OK");
      expect(text).toContain("rule: limit:connections");
      expect(h.sink.flows.some((f) => f.rule === "limit:connections" && f.decision === "denied")).toBe(true);
    } finally {
      await closeServer(slow);
    }
  });

  it("transparent HTTP: two Host headers, HTTP/1.0 without Host, CL+TE and upgrades are refused unsent", async () => {
    const h = await start({ allow: [`registry.test:${httpPort}`] });
    const seen = h.sink.flows.length;
    const cases: [string, RegExp][] = [
      ["GET / HTTP/1.1\r\nHost: registry.test\r\nHost: other.test\r\n\r\n", /^HTTP\/1\.1 400/],
      ["GET / HTTP/1.1\r\nHost: other.test\r\nhost: registry.test\r\n\r\n", /^HTTP\/1\.1 400/],
      ["GET / HTTP/1.0\r\n\r\n", /^HTTP\/1\.1 400/],
      [
        "POST / HTTP/1.1\r\nHost: registry.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: other.test\r\n\r\n",
        /^HTTP\/1\.1 400/,
      ],
      [
        "GET / HTTP/1.1\r\nHost: registry.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        /^HTTP\/1\.1 501/,
      ],
      ["GET http://other.test/ HTTP/1.1\r\nHost: registry.test\r\n\r\n", /^HTTP\/1\.1 400/],
    ];
    for (const [req, status] of cases) expect(await rawVia(h.http, req), req).toMatch(status);
    // Nothing was forwarded, so no flow was opened for any of them.
    expect(h.sink.flows.slice(seen).filter((f) => f.decision === "allowed")).toEqual([]);
  });

  it("audit mode: every spelling of loopback or 0.0.0.0 resolves into the guard, and is refused", async () => {
    // The system resolver reads numeric names itself (inet_aton) and localhost from /etc/hosts:
    // no DNS query leaves the machine.
    const h = await start({ mode: "audit" }, { guard: createAddressGuard(), resolver: systemResolver });
    for (const target of [
      "2130706433",
      "0177.0.0.1",
      "0x7f.1",
      "127.1",
      "0",
      "localhost",
      "[::ffff:7f00:1]",
    ]) {
      const t = await connectVia(h.forward, `${target}:${tcpPort}`);
      expect(t.status, target).toBe(403);
      expect(t.body, target).toMatch(/address:(loopback|unspecified)/);
    }
    for (const url of [
      `http://0x7f.1:${tcpPort}/`,
      `http://2130706433:${tcpPort}/`,
      `http://0:${tcpPort}/`,
    ]) {
      expect((await httpVia(h.forward, url)).status, url).toBe(403);
    }
    expect(h.sink.flows.every((f) => f.decision === "denied")).toBe(true);
  });

  it("transparent TLS: a ClientHello in tiny pieces with an IP or a denied SNI is cut", async () => {
    const h = await start({ allow: [`echo.test:${tcpPort}`] });
    for (const sni of ["127.0.0.1", "other.test"]) {
      const hello = await captureClientHello(sni);
      const s = netConnect(h.tls, "127.0.0.1");
      s.setNoDelay(true);
      const got = readUntilClose(s, 3000);
      for (let i = 0; i < hello.length; i += 3) s.write(hello.subarray(i, i + 3));
      expect(await got, sni).toEqual({ data: Buffer.alloc(0), closed: true });
    }
  });
});
