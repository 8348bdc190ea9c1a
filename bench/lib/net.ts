/**
 * Client side of the proxy benchmarks: child processes (proxy-child.ts), a bulk download and a
 * new-connection-to-first-byte probe, each over raw sockets so the direct and proxied paths run
 * the same client code and differ only in the preamble (none, CONNECT, or an absolute-form GET).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { connect as tlsConnect } from "node:tls";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..");

/** The upstream's name: the proxy resolves it to 127.0.0.1 and allows it on the bench ports. */
export const BENCH_HOST = "bench.test";

export interface Child {
  ports: Record<string, number>;
  pid: number;
  /** Sends one line to the child's stdin and resolves with its one-line JSON answer. */
  ask(line: string): Promise<unknown>;
  stop(): Promise<void>;
}

export interface ChildPlace {
  /** Run inside this network namespace (`ip netns exec`, which execs: the pid stays node's). */
  netns?: string;
  env?: Record<string, string>;
}

/** Starts `proxy-child.ts ROLE args…` and waits for its ports line. */
export function startChild(role: string, args: (string | number)[], place: ChildPlace = {}): Promise<Child> {
  return new Promise((resolve, reject) => {
    const node = [
      process.execPath,
      "--import",
      "tsx",
      join(here, "proxy-child.ts"),
      role,
      ...args.map(String),
    ];
    const argv = place.netns ? ["ip", "netns", "exec", place.netns, ...node] : node;
    const child: ChildProcess = spawn(argv[0] as string, argv.slice(1), {
      cwd: repoRoot,
      stdio: ["pipe", "pipe", "inherit"],
      env: { ...process.env, ...place.env },
    });
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`${role} child did not start within 30 s`));
    }, 30_000);
    child.once("error", reject);
    child.once("exit", (code, sig) => reject(new Error(`${role} child exited ${code ?? sig} before ready`)));
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.once("line", (line) => {
      clearTimeout(timer);
      child.removeAllListeners("exit");
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      resolve({
        ports: JSON.parse(line) as Record<string, number>,
        pid: child.pid as number,
        ask(q) {
          const answer = new Promise<unknown>((r) => lines.once("line", (l) => r(JSON.parse(l))));
          child.stdin?.write(`${q}\n`);
          return answer;
        },
        async stop() {
          child.stdin?.end();
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          await exited;
        },
      });
    });
  });
}

/** A raw request written first: CONNECT to `target`, or (for the forward proxy) a GET. */
export function connectPreamble(target: string): string {
  return `CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`;
}

export function getRequest(authority: string, absolute: boolean): string {
  const path = absolute ? `http://${authority}/x` : "/x";
  return `GET ${path} HTTP/1.1\r\nHost: ${authority}\r\nConnection: close\r\n\r\n`;
}

/**
 * Waits for a CONNECT answer on a fresh socket and leaves it paused. Resolves with whatever
 * followed the header in the same chunk (a bulk upstream starts sending at once).
 */
function awaitTunnel(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    let buf: Buffer = Buffer.alloc(0);
    const onData = (c: Buffer) => {
      buf = buf.length ? Buffer.concat([buf, c]) : c;
      const end = buf.indexOf("\r\n\r\n");
      if (end < 0) {
        if (buf.length > 8192) reject(new Error("CONNECT answer too long"));
        return;
      }
      // Paused so nothing that follows is emitted before the caller listens; it resumes.
      socket.pause();
      socket.off("data", onData);
      socket.off("error", reject);
      const status = buf.subarray(0, end).toString("latin1").split("\r\n")[0] ?? "";
      if (!/^HTTP\/1\.1 200 /.test(status)) {
        reject(new Error(`CONNECT refused: ${status}`));
        return;
      }
      resolve(buf.subarray(end + 4));
    };
    socket.on("data", onData);
    socket.once("error", reject);
  });
}

function openSocket(port: number, host = "127.0.0.1"): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host, port, noDelay: true });
    s.once("connect", () => {
      s.off("error", reject);
      resolve(s);
    });
    s.once("error", reject);
  });
}

export interface DownloadOptions {
  /** Default 127.0.0.1. */
  host?: string;
  port: number;
  /** CONNECT through a forward proxy to this host:port first. */
  connect?: string;
  /** Speak TLS (to the upstream, end to end) with this SNI. */
  tlsServername?: string;
  expectBytes: number;
}

/** connect → last byte of a bulk download, in ms; rejects unless exactly expectBytes arrive. */
export async function download(o: DownloadOptions): Promise<number> {
  const t0 = performance.now();
  let raw: Socket | undefined;
  let early = 0;
  if (o.connect) {
    raw = await openSocket(o.port, o.host);
    raw.write(connectPreamble(o.connect));
    const extra = await awaitTunnel(raw);
    if (extra.length && o.tlsServername) throw new Error("bytes before the TLS handshake");
    early = extra.length;
  }
  const socket: Socket = o.tlsServername
    ? tlsConnect({
        ...(raw ? { socket: raw } : { host: o.host ?? "127.0.0.1", port: o.port }),
        servername: o.tlsServername,
        rejectUnauthorized: false,
      })
    : (raw ?? (await openSocket(o.port, o.host)));
  return new Promise((resolve, reject) => {
    let n = early;
    socket.on("data", (c: Buffer) => {
      n += c.length;
    });
    socket.resume();
    socket.once("error", reject);
    socket.setTimeout(60_000, () => socket.destroy(new Error(`download stalled after ${n} bytes`)));
    socket.once("end", () => {
      const ms = performance.now() - t0;
      socket.destroy();
      if (n !== o.expectBytes) reject(new Error(`downloaded ${n} bytes, expected ${o.expectBytes}`));
      else resolve(ms);
    });
  });
}

export interface ProbeOptions {
  port: number;
  /** CONNECT through a forward proxy to this host:port, then send `request` in the tunnel. */
  connect?: string;
  request: string;
}

/**
 * A new connection: connect → (CONNECT → 200) → write `request` → the first byte of the answer,
 * in ms. Then waits for the server's close, so one sample's teardown does not overlap the next.
 */
export async function firstByte(o: ProbeOptions): Promise<number> {
  const t0 = performance.now();
  const socket = await openSocket(o.port);
  if (o.connect) {
    socket.write(connectPreamble(o.connect));
    const extra = await awaitTunnel(socket);
    if (extra.length) throw new Error("bytes before the tunnel was used");
  }
  return new Promise((resolve, reject) => {
    let ms: number | undefined;
    socket.once("data", () => {
      ms = performance.now() - t0;
      socket.resume();
    });
    socket.once("error", reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error("no answer within 10 s")));
    socket.once("close", () => {
      if (ms === undefined) reject(new Error("closed before any answer"));
      else resolve(ms);
    });
    socket.on("end", () => socket.end());
    socket.write(o.request);
    socket.resume();
  });
}

/** User + system CPU time a process has used so far, in ms (10 ms resolution: USER_HZ = 100). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}
