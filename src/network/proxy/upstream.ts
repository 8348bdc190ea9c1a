import { lookup } from "node:dns/promises";
import { connect, type OnReadOpts, type Socket } from "node:net";
import type { AddressGuard } from "./address-guard.js";
import { addressRule, type Decision, type EgressPolicy } from "./allowlist.js";
import { formatIp, parseIp } from "./ip.js";

/** Every address a name has. Injected in tests so `registry.test` can mean 127.0.0.1. */
export type Resolver = (host: string) => Promise<string[]>;

export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export type UpstreamResult =
  | { kind: "connected"; socket: Socket; address: string }
  | { kind: "refused"; rule: string; address: string | null }
  | { kind: "failed"; error: string; address: string | null };

export interface UpstreamOptions {
  resolver: Resolver;
  guard: AddressGuard;
  dnsTimeoutMs: number;
  connectTimeoutMs: number;
  /** Reads of the connected socket go here instead of 'data' events (see down-relay.ts). */
  onread?: OnReadOpts;
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(Object.assign(new Error(`${what} timed out`), { code: "ETIMEDOUT" })),
      ms,
    );
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

function connectOnce(
  address: string,
  port: number,
  timeoutMs: number,
  onread: OnReadOpts | undefined,
): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: address, port, noDelay: true, ...(onread ? { onread } : {}) });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(Object.assign(new Error("connect timed out"), { code: "ETIMEDOUT" }));
    }, timeoutMs);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.removeAllListeners("error");
      resolve(socket);
    });
    socket.once("error", (e) => {
      clearTimeout(timer);
      socket.destroy();
      reject(e);
    });
  });
}

/**
 * A connection the kernel routed back to this host: it took the destination as its own source.
 * The guard's interface list misses an address the host owns on a link without carrier, or one
 * added a moment ago; this catches those after the fact. Loopback is the guard's (and the tests')
 * business.
 */
function reachedThisHost(socket: Socket): boolean {
  const local = parseIp(socket.localAddress ?? "");
  const remote = parseIp(socket.remoteAddress ?? "");
  if (!local || !remote) return false;
  const loopback = remote.family === 4 ? remote.bytes[0] === 127 : formatIp(remote) === "::1";
  return !loopback && formatIp(local) === formatIp(remote);
}

function errorCode(e: unknown): string {
  const err = e as { code?: unknown; message?: unknown };
  return typeof err.code === "string" ? err.code : String(err.message ?? e);
}

/**
 * Resolves an allowed destination once, puts every address through the guard, and connects only
 * to an address that passed. Nothing is resolved again after the check, so a name that rebinds
 * between the check and the connect cannot reach a forbidden address. Permitted addresses are
 * tried in the resolver's order until one accepts.
 */
export async function openUpstream(
  policy: EgressPolicy,
  decision: Decision,
  port: number,
  opts: UpstreamOptions,
): Promise<UpstreamResult> {
  const lift = (ip: Parameters<typeof addressRule>[1]) => addressRule(policy, ip, port) !== undefined;
  let addresses: string[];
  if (decision.ip) {
    addresses = [decision.host];
  } else {
    try {
      addresses = await withTimeout(opts.resolver(decision.host), opts.dnsTimeoutMs, "DNS lookup");
    } catch (e) {
      return { kind: "failed", error: errorCode(e), address: null };
    }
    if (addresses.length === 0) return { kind: "failed", error: "ENOTFOUND", address: null };
  }
  const permitted: string[] = [];
  let firstRefusal: { rule: string; address: string } | undefined;
  for (const a of addresses) {
    const v = opts.guard.check(a, lift, decision.ip ? undefined : decision.host);
    if (v.ok) permitted.push(v.address);
    else firstRefusal ??= { rule: `address:${v.category}`, address: v.address };
  }
  if (permitted.length === 0) {
    const r = firstRefusal ?? { rule: "address:invalid", address: addresses[0] ?? "" };
    return { kind: "refused", rule: r.rule, address: r.address };
  }
  let lastError: unknown;
  for (const address of permitted) {
    try {
      const socket = await connectOnce(address, port, opts.connectTimeoutMs, opts.onread);
      if (reachedThisHost(socket)) {
        socket.destroy();
        firstRefusal ??= { rule: "address:host", address };
        continue;
      }
      return { kind: "connected", socket, address };
    } catch (e) {
      lastError = e;
    }
  }
  if (lastError === undefined && firstRefusal) {
    return { kind: "refused", rule: firstRefusal.rule, address: firstRefusal.address };
  }
  return { kind: "failed", error: errorCode(lastError), address: permitted[permitted.length - 1] ?? null };
}
