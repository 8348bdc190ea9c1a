import {
  createServer as createHttpServer,
  type Server as HttpServer,
  request as httpRequest,
  type IncomingMessage,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import { createServer as createNetServer, type Server as NetServer, type Socket } from "node:net";
import { performance } from "node:perf_hooks";
import type { Duplex } from "node:stream";
import { type AddressGuard, createAddressGuard } from "./address-guard.js";
import { type Decision, decide, type EgressPolicy } from "./allowlist.js";
import { DownRelay } from "./down-relay.js";
import { type Flow, type FlowProtocol, type FlowSink, newFlowId } from "./flow-log.js";
import { formatIp, parseIp } from "./ip.js";
import { maxClientHello, parseClientHello } from "./sni.js";
import { openUpstream, type Resolver, systemResolver, type UpstreamResult } from "./upstream.js";

/** What the proxy needs to know about the job behind a client connection. */
export interface JobEgress {
  jobId: string;
  runId: string;
  runnerId: string;
  policy: EgressPolicy;
}

export interface ProxyLimits {
  /** Request line plus headers, for the HTTP listeners (Node answers 431 above it). */
  maxHeaderBytes: number;
  /** A client must finish its request headers (or its ClientHello) within this (slowloris). */
  headersTimeoutMs: number;
  dnsTimeoutMs: number;
  connectTimeoutMs: number;
  /** A tunnel or keep-alive connection with no traffic either way for this long is closed. */
  idleTimeoutMs: number;
  /**
   * Open client connections per job, across all listeners of this proxy; the same bound holds for
   * the job's open upstream connections (pipelined requests on one client connection each open
   * their own upstream, so counting clients alone does not bound them).
   */
  maxConnectionsPerJob: number;
}

export const defaultLimits: ProxyLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  dnsTimeoutMs: 5_000,
  connectTimeoutMs: 10_000,
  idleTimeoutMs: 300_000,
  maxConnectionsPerJob: 256,
};

export interface EgressProxyOptions {
  /**
   * Who is this client? Called with the client's source address (IPv4-mapped IPv6 unwrapped).
   * A proxy bound on one job's host-end veth address can ignore the argument; a shared listener
   * maps the job's sandbox address to its job. Undefined: the connection is closed, unserved.
   */
  jobForClient(remoteAddress: string): JobEgress | undefined;
  sink: FlowSink;
  resolver?: Resolver;
  guard?: AddressGuard;
  limits?: Partial<ProxyLimits>;
  /** Problems that are not flows (a client nobody claims, a sink that throws). Never secrets. */
  onError?: (error: Error, context: { role?: ListenerRole; jobId?: string }) => void;
}

/**
 * - `forward`: explicit proxy (HTTP_PROXY / HTTPS_PROXY): absolute-form HTTP requests and CONNECT.
 * - `http`: transparent, for TCP to port 80 redirected here: decided per request by its Host header.
 * - `tls`: transparent, for TCP to port 443 redirected here: decided by the ClientHello's SNI.
 */
export type ListenerRole = "forward" | "http" | "tls";

export interface ListenOptions {
  role: ListenerRole;
  host: string;
  /** 0 picks a free port; the bound one is returned. */
  port: number;
  /** Where transparent traffic goes: 80 for `http`, 443 for `tls`. Tests point it at their servers. */
  upstreamPort?: number;
}

// Hop-by-hop headers (RFC 9110 §7.6.1) plus proxy credentials: never passed on. `expect` is
// answered by this proxy (Node sends 100 Continue) rather than relayed.
const hopByHop = new Set([
  "connection",
  "keep-alive",
  "proxy-connection",
  "proxy-authorization",
  "proxy-authenticate",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
  "expect",
]);

function endToEnd(raw: readonly string[]): string[] {
  const drop = new Set(hopByHop);
  for (let i = 0; i < raw.length; i += 2) {
    if ((raw[i] as string).toLowerCase() === "connection") {
      for (const t of (raw[i + 1] as string).split(",")) drop.add(t.trim().toLowerCase());
    }
  }
  const out: string[] = [];
  for (let i = 0; i < raw.length; i += 2) {
    if (!drop.has((raw[i] as string).toLowerCase())) out.push(raw[i] as string, raw[i + 1] as string);
  }
  return out;
}

/** `host:port` or `[v6]:port` as in a CONNECT request line or a Host header. */
function splitAuthority(authority: string): { host: string; port: number | undefined } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]\s/@]+))(?::(\d{1,5}))?$/.exec(authority);
  if (!m) return undefined;
  const port = m[3] === undefined ? undefined : Number(m[3]);
  if (port !== undefined && (port < 1 || port > 65535)) return undefined;
  return { host: m[1] ?? (m[2] as string), port };
}

function denialText(host: string, port: number, rule: string): string {
  return `airlock egress: ${host}:${port} is not allowed (rule: ${rule})\n`;
}

/** A flow from the moment a connection (or request) is accepted until both sides are gone. */
class FlowTracker {
  private readonly t0 = performance.now();
  private readonly startedAt = new Date().toISOString();
  private connectMs: number | null = null;
  private upstream: Socket | undefined;
  private done = false;
  host = "";
  address: string | null = null;
  port = 0;
  decision: Decision["decision"] = "denied";
  rule = "";
  error: string | undefined;

  constructor(
    private readonly proxy: EgressProxy,
    private readonly job: JobEgress,
    private readonly protocol: FlowProtocol,
  ) {}

  decided(d: Decision, port: number): void {
    this.host = d.host;
    this.port = port;
    this.decision = d.decision;
    this.rule = d.rule;
  }

  /** Applies what opening the upstream found; returns the socket when there is one. */
  opened(r: UpstreamResult): Socket | undefined {
    this.address = r.address;
    if (r.kind === "refused") {
      this.decision = "denied";
      this.rule = r.rule;
      return undefined;
    }
    if (r.kind === "failed") {
      this.error = r.error;
      return undefined;
    }
    this.connectMs = performance.now() - this.t0;
    this.upstream = r.socket;
    return r.socket;
  }

  finish(error?: string): void {
    if (this.done) return;
    this.done = true;
    // The kernel counts the bytes for us: nothing is done per chunk.
    const up = this.upstream;
    const flow: Flow = {
      id: newFlowId(),
      jobId: this.job.jobId,
      runId: this.job.runId,
      runnerId: this.job.runnerId,
      mode: this.job.policy.mode,
      host: this.host,
      address: this.address,
      port: this.port,
      protocol: this.protocol,
      bytesUp: up?.bytesWritten ?? 0,
      bytesDown: up?.bytesRead ?? 0,
      startedAt: this.startedAt,
      durationMs: performance.now() - this.t0,
      connectMs: this.connectMs,
      decision: this.decision,
      rule: this.rule,
    };
    const err = error ?? this.error;
    if (err) flow.error = err;
    this.proxy.emitFlow(flow);
  }
}

/**
 * Joins two sockets until both are done. Half-closes pass through (a client that ends its request
 * still gets the response). Either side failing, or no traffic for `idleMs`, ends both.
 */
function splice(
  client: Duplex & { setTimeout?: Socket["setTimeout"] },
  upstream: Socket,
  down: DownRelay,
  idleMs: number,
  onDone: (error?: string) => void,
): void {
  let error: string | undefined;
  let open = 2;
  const closed = () => {
    if (--open === 0) onDone(error);
  };
  const fail = (e: Error & { code?: string }) => {
    error ??= e.code ?? e.message;
    client.destroy();
    upstream.destroy();
  };
  client.on("error", fail);
  upstream.on("error", fail);
  client.once("close", () => {
    // A client gone without a clean end takes the upstream with it.
    if (!upstream.destroyed && !upstream.writableEnded) upstream.destroy();
    closed();
  });
  upstream.once("close", () => {
    if (!client.destroyed && !client.writableEnded) client.destroy();
    closed();
  });
  const idle = () => fail(Object.assign(new Error("idle timeout"), { code: "IDLE_TIMEOUT" }));
  client.setTimeout?.(idleMs, idle);
  upstream.setTimeout(idleMs, idle);
  client.pipe(upstream);
  down.start(upstream, client);
}

export class EgressProxy {
  private readonly resolver: Resolver;
  private readonly guard: AddressGuard;
  private readonly limits: ProxyLimits;
  private readonly servers = new Set<HttpServer | NetServer>();
  private readonly sockets = new Set<Socket>();
  private readonly jobOf = new WeakMap<Socket, JobEgress>();
  private readonly perJob = new Map<string, number>();
  /** Upstream connections per job, open or being opened. */
  private readonly upstreamsPerJob = new Map<string, number>();
  private closing = false;

  constructor(private readonly options: EgressProxyOptions) {
    this.resolver = options.resolver ?? systemResolver;
    this.guard = options.guard ?? createAddressGuard();
    this.limits = { ...defaultLimits, ...options.limits };
  }

  /**
   * Starts one listener. Call once per role (and per address, when binding per job); `close`
   * stops that listener alone, for a job's teardown.
   */
  async listen(opts: ListenOptions): Promise<{ host: string; port: number; close(): Promise<void> }> {
    const server = opts.role === "tls" ? this.tlsServer(opts.upstreamPort ?? 443) : this.httpServer(opts);
    this.servers.add(server);
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(opts.port, opts.host, () => {
        server.off("error", reject);
        resolve();
      });
    });
    const a = server.address();
    if (a === null || typeof a === "string") throw new Error("proxy listener has no TCP address");
    const close = () =>
      new Promise<void>((resolve) => {
        this.servers.delete(server);
        server.close(() => resolve());
      });
    return { host: a.address, port: a.port, close };
  }

  /** Stops listening and cuts every open connection (teardown). Flows of cut connections are recorded. */
  async close(): Promise<void> {
    this.closing = true;
    const closing = [...this.servers].map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    for (const s of this.sockets) s.destroy();
    await Promise.all(closing);
    this.servers.clear();
  }

  /**
   * Cuts every open connection of one job (teardown of a shared proxy). Their flows are recorded
   * as they close. New connections are still governed by jobForClient: unregister the job first.
   */
  closeJob(jobId: string): void {
    for (const s of this.sockets) if (this.jobOf.get(s)?.jobId === jobId) s.destroy();
  }

  /** Open client connections of a job (for tests, and for the lead's metrics). */
  connections(jobId: string): number {
    return this.perJob.get(jobId) ?? 0;
  }

  /** @internal FlowTracker reports here so that a throwing sink cannot break a connection. */
  emitFlow(flow: Flow): void {
    try {
      this.options.sink.record(flow);
    } catch (e) {
      this.options.onError?.(e as Error, { jobId: flow.jobId });
    }
  }

  /** Claims a new client connection for its job, or refuses it. */
  private admit(socket: Socket, role: ListenerRole): JobEgress | undefined {
    if (this.closing) {
      socket.destroy();
      return undefined;
    }
    const ip = parseIp(socket.remoteAddress ?? "");
    const job = ip ? this.options.jobForClient(formatIp(ip)) : undefined;
    if (!job) {
      this.options.onError?.(new Error(`connection from ${socket.remoteAddress} claimed by no job`), {
        role,
      });
      socket.destroy();
      return undefined;
    }
    const n = this.perJob.get(job.jobId) ?? 0;
    if (n >= this.limits.maxConnectionsPerJob) {
      const t = new FlowTracker(this, job, role === "tls" ? "tls" : "tcp");
      t.rule = "limit:connections";
      t.finish();
      socket.destroy();
      return undefined;
    }
    this.perJob.set(job.jobId, n + 1);
    this.sockets.add(socket);
    this.jobOf.set(socket, job);
    socket.setNoDelay(true);
    socket.once("close", () => {
      this.sockets.delete(socket);
      const left = (this.perJob.get(job.jobId) ?? 1) - 1;
      if (left <= 0) this.perJob.delete(job.jobId);
      else this.perJob.set(job.jobId, left);
    });
    return job;
  }

  private upstreamOptions(down?: DownRelay) {
    return {
      resolver: this.resolver,
      guard: this.guard,
      dnsTimeoutMs: this.limits.dnsTimeoutMs,
      connectTimeoutMs: this.limits.connectTimeoutMs,
      ...(down ? { onread: down.onread } : {}),
    };
  }

  private async open(
    t: FlowTracker,
    job: JobEgress,
    d: Decision,
    port: number,
    down?: DownRelay,
  ): Promise<Socket | undefined> {
    const n = this.upstreamsPerJob.get(job.jobId) ?? 0;
    if (n >= this.limits.maxConnectionsPerJob) {
      t.opened({ kind: "refused", rule: "limit:connections", address: null });
      return undefined;
    }
    // The slot is taken before resolving, so requests still resolving count too.
    this.upstreamsPerJob.set(job.jobId, n + 1);
    const release = () => {
      const left = (this.upstreamsPerJob.get(job.jobId) ?? 1) - 1;
      if (left <= 0) this.upstreamsPerJob.delete(job.jobId);
      else this.upstreamsPerJob.set(job.jobId, left);
    };
    const result = await openUpstream(job.policy, d, port, this.upstreamOptions(down)).catch(
      (e: unknown): UpstreamResult => ({ kind: "failed", error: String(e), address: null }),
    );
    const socket = t.opened(result);
    if (!socket) release();
    if (socket) {
      socket.once("close", release);
      // Until its user attaches real handlers (synchronously after this returns), an error
      // on the upstream must not be fatal; the close that follows is what gets recorded.
      socket.on("error", () => {});
      if (this.closing) {
        socket.destroy();
        return undefined;
      }
      this.sockets.add(socket);
      socket.once("close", () => this.sockets.delete(socket));
    }
    return socket;
  }

  private httpServer(opts: ListenOptions): HttpServer {
    const l = this.limits;
    const server = createHttpServer({
      maxHeaderSize: l.maxHeaderBytes,
      headersTimeout: l.headersTimeoutMs,
      // Bodies may be large and slow (uploads); headers are what slowloris abuses, and idle
      // connections are cut by the socket timeout below.
      requestTimeout: 0,
      keepAliveTimeout: 5_000,
      // How often Node looks for connections past headersTimeout.
      connectionsCheckingInterval: Math.min(1_000, l.headersTimeoutMs),
      requireHostHeader: opts.role === "http",
    });
    server.on("connection", (socket: Socket) => {
      if (this.admit(socket, opts.role)) socket.setTimeout(l.idleTimeoutMs, () => socket.destroy());
    });
    server.on("clientError", (err: Error & { code?: string }, socket: Duplex) => {
      if (!socket.writable || err.code === "ECONNRESET") {
        socket.destroy();
        return;
      }
      const status =
        err.code === "HPE_HEADER_OVERFLOW" ? 431 : err.code === "ERR_HTTP_REQUEST_TIMEOUT" ? 408 : 400;
      socket.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\nContent-Length: 0\r\n\r\n`,
      );
    });
    const upstreamPort = opts.upstreamPort ?? 80;
    server.on("request", (req: IncomingMessage, res: ServerResponse) => {
      const job = this.jobOf.get(req.socket);
      if (!job) {
        res.destroy();
        return;
      }
      void this.forwardRequest(job, opts.role, upstreamPort, req, res);
    });
    server.on("connect", (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const job = this.jobOf.get(req.socket);
      if (!job || opts.role !== "forward") {
        socket.end("HTTP/1.1 405 Method Not Allowed\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
        return;
      }
      void this.tunnel(job, req, socket as Socket, head);
    });
    server.on("upgrade", (_req: IncomingMessage, socket: Duplex) => {
      // WebSocket clients behind HTTP_PROXY use CONNECT; plain-HTTP upgrades are not relayed.
      socket.end("HTTP/1.1 501 Not Implemented\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
    });
    return server;
  }

  /** Plain HTTP, one flow and one upstream connection per request. */
  private async forwardRequest(
    job: JobEgress,
    role: ListenerRole,
    transparentPort: number,
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<void> {
    const reply = (status: number, text: string) => {
      res.writeHead(status, {
        "content-type": "text/plain; charset=utf-8",
        "content-length": Buffer.byteLength(text),
      });
      res.end(text);
    };
    let host: string;
    let port: number;
    let path: string;
    let authority: string;
    if (role === "forward") {
      let url: URL;
      try {
        url = new URL(req.url ?? "");
      } catch {
        reply(400, "airlock egress: send absolute-form requests (GET http://host/path) to this proxy\n");
        return;
      }
      if (url.protocol !== "http:") {
        reply(400, "airlock egress: only http:// is forwarded; use CONNECT for https\n");
        return;
      }
      host = url.hostname;
      port = url.port ? Number(url.port) : 80;
      path = `${url.pathname}${url.search}`;
      // RFC 9112 §3.2.2: the absolute URI's authority, not a Host header the client also sent,
      // names the destination; upstream sees the host that was decided (userinfo dropped).
      authority = url.host;
    } else {
      // RFC 9112 §3.2: more than one Host is a 400. Node keeps the first; a server behind a
      // cache or another proxy might take the last, so the request is refused, not guessed at.
      const hosts = req.rawHeaders.filter((h, i) => i % 2 === 0 && h.toLowerCase() === "host");
      const a = hosts.length === 1 ? splitAuthority(req.headers.host ?? "") : undefined;
      if (!a) {
        reply(400, "airlock egress: missing or malformed Host header\n");
        return;
      }
      // The original destination address is not trusted (and not known): the name decides.
      host = a.host;
      port = transparentPort;
      if (!req.url?.startsWith("/")) {
        reply(400, "airlock egress: expected an origin-form request (GET /path)\n");
        return;
      }
      path = req.url;
      authority = req.headers.host as string;
    }
    const t = new FlowTracker(this, job, "http");
    const d = decide(job.policy, { host, port });
    t.decided(d, port);
    if (!d.allowed) {
      reply(403, denialText(d.host, port, d.rule));
      t.finish();
      return;
    }
    const socket = await this.open(t, job, d, port);
    if (!socket) {
      if (t.decision === "denied") reply(403, denialText(d.host, port, t.rule));
      else reply(502, `airlock egress: cannot reach ${d.host}:${port} (${t.error})\n`);
      t.finish();
      return;
    }
    if (res.destroyed) {
      socket.destroy();
      t.finish("client gone");
      return;
    }
    socket.setTimeout(this.limits.idleTimeoutMs, () => socket.destroy(new Error("idle timeout")));
    const headers = endToEnd(req.rawHeaders);
    const out: string[] = [];
    for (let i = 0; i < headers.length; i += 2) {
      if ((headers[i] as string).toLowerCase() !== "host")
        out.push(headers[i] as string, headers[i + 1] as string);
    }
    // One upstream connection per request, closed after it: bytes are counted per flow.
    out.unshift("Host", authority);
    out.push("Connection", "close");
    let error: string | undefined;
    const upReq = httpRequest({
      method: req.method,
      path,
      headers: out,
      setHost: false,
      createConnection: () => socket,
    });
    upReq.on("response", (upRes) => {
      res.writeHead(upRes.statusCode ?? 502, upRes.statusMessage, endToEnd(upRes.rawHeaders));
      upRes.pipe(res);
      upRes.on("error", (e: Error & { code?: string }) => {
        error ??= e.code ?? e.message;
        res.destroy();
      });
    });
    upReq.on("error", (e: Error & { code?: string }) => {
      error ??= e.code ?? e.message;
      if (!res.headersSent) reply(502, `airlock egress: ${d.host}:${port} failed (${error})\n`);
      else res.destroy();
    });
    // The client went away mid-request or mid-response: stop the upstream too.
    res.on("close", () => {
      if (!res.writableFinished) socket.destroy();
    });
    socket.once("close", () => t.finish(error));
    req.pipe(upReq);
  }

  /** CONNECT host:port: decide, connect, answer 200, then bytes both ways, never looked at. */
  private async tunnel(job: JobEgress, req: IncomingMessage, client: Socket, head: Buffer): Promise<void> {
    // Node removes its own error handler from a CONNECT socket; a reset while we resolve and
    // connect must not become an uncaught error. It shows up as the socket being destroyed.
    client.on("error", () => {});
    const a = splitAuthority(req.url ?? "");
    if (!a || a.port === undefined) {
      client.end("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n");
      return;
    }
    const t = new FlowTracker(this, job, "connect");
    const d = decide(job.policy, { host: a.host, port: a.port });
    t.decided(d, a.port);
    const refuse = (status: number, text: string) => {
      client.end(
        `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
      );
      t.finish();
    };
    if (!d.allowed) {
      refuse(403, denialText(d.host, a.port, d.rule));
      return;
    }
    const down = new DownRelay();
    const upstream = await this.open(t, job, d, a.port, down);
    if (!upstream) {
      if (t.decision === "denied") refuse(403, denialText(d.host, a.port, t.rule));
      else refuse(502, `airlock egress: cannot reach ${d.host}:${a.port} (${t.error})\n`);
      return;
    }
    if (client.destroyed) {
      upstream.destroy();
      t.finish("client gone");
      return;
    }
    client.write("HTTP/1.1 200 Connection Established\r\n\r\n");
    if (head.length) upstream.write(head);
    splice(client, upstream, down, this.limits.idleTimeoutMs, (e) => t.finish(e));
  }

  private tlsServer(upstreamPort: number): NetServer {
    const server = createNetServer({ allowHalfOpen: true, pauseOnConnect: false }, (client) => {
      const job = this.admit(client, "tls");
      if (job) this.peekClientHello(job, client, upstreamPort);
    });
    return server;
  }

  /** Transparent TLS: read (never answer) the ClientHello, route by SNI, replay it verbatim. */
  private peekClientHello(job: JobEgress, client: Socket, port: number): void {
    const chunks: Buffer[] = [];
    let size = 0;
    const t = new FlowTracker(this, job, "tls");
    t.port = port;
    const stop = (rule: string, error?: string) => {
      peeking = false;
      client.off("data", onData);
      clearTimeout(timer);
      t.rule = rule;
      t.decision = "denied";
      client.destroy();
      t.finish(error);
    };
    let peeking = true;
    const timer = setTimeout(
      () => stop("invalid-client-hello", "ClientHello timeout"),
      this.limits.headersTimeoutMs,
    );
    // Errors before the splice show up as the close below.
    client.on("error", () => {});
    client.once("close", () => {
      if (peeking) stop("invalid-client-hello", "client closed");
    });
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      const buf = chunks.length === 1 ? chunk : Buffer.concat(chunks);
      const r = parseClientHello(buf);
      if (r.state === "more") {
        // Records carry their lengths, so "more" past this bound means a ClientHello too large.
        if (size > maxClientHello + 5 * 8) stop("invalid-client-hello", "ClientHello too large");
        return;
      }
      // Paused in the same tick the listener goes, so no byte is emitted to nobody.
      client.off("data", onData);
      client.pause();
      clearTimeout(timer);
      peeking = false;
      if (r.state === "invalid") {
        stop("invalid-client-hello", r.reason);
        return;
      }
      if (r.serverName === undefined) {
        stop("no-sni");
        return;
      }
      void this.routeTls(job, client, t, r.serverName, port, buf);
    };
    client.on("data", onData);
  }

  private async routeTls(
    job: JobEgress,
    client: Socket,
    t: FlowTracker,
    sni: string,
    port: number,
    hello: Buffer,
  ) {
    const d = decide(job.policy, { host: sni, port });
    t.decided(d, port);
    if (!d.allowed) {
      client.destroy();
      t.finish();
      return;
    }
    const down = new DownRelay();
    const upstream = await this.open(t, job, d, port, down);
    if (!upstream || client.destroyed) {
      upstream?.destroy();
      client.destroy();
      t.finish(upstream ? "client gone" : undefined);
      return;
    }
    upstream.write(hello);
    splice(client, upstream, down, this.limits.idleTimeoutMs, (e) => t.finish(e));
    client.resume();
  }
}
