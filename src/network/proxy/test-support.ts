/** Fixtures for the proxy's tests. Everything listens on 127.0.0.1 only. */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer as createHttpServer, type Server as HttpServer, request } from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect as tlsConnect } from "node:tls";
import { defaultGuardRules } from "./address-guard.js";
import type { Flow, FlowSink } from "./flow-log.js";
import type { Resolver } from "./upstream.js";

/** The default rules minus loopback, so that upstreams on 127.0.0.1 are reachable in tests. */
export const rulesWithoutLoopback = defaultGuardRules.filter((r) => r.category !== "loopback");

export function fakeResolver(names: Record<string, string[]>): Resolver {
  return async (host) => {
    const a = names[host];
    if (!a) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: "ENOTFOUND" });
    return a;
  };
}

export class MemorySink implements FlowSink {
  readonly flows: Flow[] = [];
  private waiters: (() => void)[] = [];
  record(flow: Flow): void {
    this.flows.push(flow);
    for (const w of this.waiters.splice(0)) w();
  }
  /** Resolves once at least n flows are recorded. */
  async waitFor(n: number, timeoutMs = 5000): Promise<Flow[]> {
    const deadline = Date.now() + timeoutMs;
    while (this.flows.length < n) {
      if (Date.now() > deadline) throw new Error(`expected ${n} flows, have ${this.flows.length}`);
      await new Promise<void>((resolve) => {
        this.waiters.push(resolve);
        setTimeout(resolve, 50);
      });
    }
    return this.flows;
  }
}

export function listen<S extends HttpServer | NetServer>(server: S): Promise<number> {
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve((server.address() as { port: number }).port));
  });
}

export function closeServer(server: HttpServer | NetServer): Promise<void> {
  if ("closeAllConnections" in server) server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Answers with what it received: method, path and headers as JSON, plus the body length. */
export function echoHttpServer(): HttpServer {
  return createHttpServer((req, res) => {
    let length = 0;
    req.on("data", (c: Buffer) => {
      length += c.length;
    });
    req.on("end", () => {
      if (req.url?.startsWith("/bytes/")) {
        const n = Number(req.url.slice(7));
        res.writeHead(200, { "content-length": n });
        res.end(Buffer.alloc(n, 7));
        return;
      }
      const body = JSON.stringify({ method: req.method, url: req.url, headers: req.headers, length });
      res.writeHead(200, {
        "content-type": "application/json",
        connection: "x-hop",
        "x-hop": "1",
        "x-upstream": "1",
      });
      res.end(body);
    });
  });
}

/** Sends back every byte it gets; records what it got. */
export function echoTcpServer(): NetServer & { received: Buffer[] } {
  const received: Buffer[] = [];
  const server = createNetServer((s) => {
    s.on("data", (c: Buffer) => received.push(c));
    s.on("error", () => {});
    s.pipe(s);
  });
  return Object.assign(server, { received });
}

export interface Response {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** A request through an explicit proxy (absolute-form) or to a transparent listener (origin-form). */
export function httpVia(
  port: number,
  path: string,
  opts: { method?: string; headers?: Record<string, string>; body?: string | Buffer } = {},
): Promise<Response> {
  return new Promise((resolve, reject) => {
    const req = request({
      host: "127.0.0.1",
      port,
      path,
      method: opts.method ?? "GET",
      headers: opts.headers,
      agent: false,
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks).toString(),
        }),
      );
    });
    req.on("error", reject);
    req.end(opts.body);
  });
}

export interface Tunnel {
  status: number;
  body: string;
  socket?: Socket;
}

export function connectVia(port: number, target: string): Promise<Tunnel> {
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, method: "CONNECT", path: target, agent: false });
    // Node reports any answer to CONNECT as "connect"; a refusal's body follows on the socket.
    req.on("connect", (res, socket, head) => {
      const status = res.statusCode ?? 0;
      if (status === 200) {
        resolve({ status, body: "", socket });
        return;
      }
      void readUntilClose(socket).then(({ data }) =>
        resolve({ status, body: Buffer.concat([head, data]).toString() }),
      );
    });
    req.on("response", (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
    });
    req.on("error", reject);
    req.end();
  });
}

/** Writes `data` and collects `expect` bytes back. */
export function roundTrip(socket: Socket, data: Buffer, expect = data.length): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let n = 0;
    const onData = (c: Buffer) => {
      chunks.push(c);
      n += c.length;
      if (n >= expect) {
        socket.off("data", onData);
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on("data", onData);
    socket.once("error", reject);
    socket.write(data);
  });
}

/** Resolves with everything a socket receives until it closes (or the deadline passes). */
export function readUntilClose(socket: Socket, timeoutMs = 5000): Promise<{ data: Buffer; closed: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => resolve({ data: Buffer.concat(chunks), closed: false }), timeoutMs);
    socket.on("data", (c: Buffer) => chunks.push(c));
    socket.on("error", () => {});
    socket.once("close", () => {
      clearTimeout(timer);
      resolve({ data: Buffer.concat(chunks), closed: true });
    });
  });
}

/** The exact bytes of a real ClientHello (Node's TLS client), captured by a listener that answers nothing. */
export async function captureClientHello(servername?: string): Promise<Buffer> {
  const got: Buffer[] = [];
  let done: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    done = resolve;
  });
  const server = createNetServer((s) => {
    s.on("data", (c: Buffer) => {
      got.push(c);
      // A ClientHello is one flight; wait a moment for any further record of it.
      setTimeout(() => {
        s.destroy();
        done();
      }, 50);
    });
  });
  const port = await listen(server);
  const client = tlsConnect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false });
  client.on("error", () => {});
  await finished;
  client.destroy();
  await closeServer(server);
  return Buffer.concat(got);
}

/**
 * A self-signed certificate for the given names, made with the openssl CLI (node:crypto cannot
 * issue certificates). Undefined when openssl is missing; callers skip.
 */
export function selfSignedCert(names: string[]): { key: string; cert: string } | undefined {
  const dir = mkdtempSync(join(tmpdir(), "airlock-proxy-cert-"));
  try {
    const r = spawnSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-days",
        "1",
        "-subj",
        `/CN=${names[0]}`,
        "-addext",
        `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
      ],
      { stdio: "ignore" },
    );
    if (r.status !== 0) return undefined;
    return {
      key: readFileSync(join(dir, "key.pem"), "utf8"),
      cert: readFileSync(join(dir, "cert.pem"), "utf8"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
