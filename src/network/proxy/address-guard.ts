import { networkInterfaces } from "node:os";
import { performance } from "node:perf_hooks";
import { type Cidr, cidrContains, formatIp, type IpAddress, parseCidr, parseIp } from "./ip.js";

export type AddressCategory =
  | "loopback"
  | "link-local"
  | "unspecified"
  | "multicast"
  | "broadcast"
  | "job-pool"
  | "host"
  | "denied"
  | "private"
  | "reserved"
  | "invalid";

export interface GuardRule {
  cidr: string;
  category: AddressCategory;
  /**
   * Hard rules hold whatever the job's policy says. Soft ones (private and reserved ranges) give
   * way only to an allow rule that lists the address or its range explicitly (`10.1.0.0/16:5432`).
   */
  hard: boolean;
}

/** Destinations on this host or its link: reaching them from a job is an escape, never a need. */
export const hardGuardRules: readonly GuardRule[] = [
  { cidr: "127.0.0.0/8", category: "loopback", hard: true },
  { cidr: "::1/128", category: "loopback", hard: true },
  { cidr: "169.254.0.0/16", category: "link-local", hard: true }, // incl. 169.254.169.254 metadata
  { cidr: "fe80::/10", category: "link-local", hard: true },
  { cidr: "0.0.0.0/8", category: "unspecified", hard: true }, // 0.0.0.0 reaches the local host on Linux
  { cidr: "::/128", category: "unspecified", hard: true },
  { cidr: "224.0.0.0/4", category: "multicast", hard: true },
  { cidr: "ff00::/8", category: "multicast", hard: true },
  { cidr: "255.255.255.255/32", category: "broadcast", hard: true },
];

/** Internal networks and ranges with no public hosts: closed unless a rule names them. */
export const softGuardRules: readonly GuardRule[] = [
  { cidr: "10.0.0.0/8", category: "private", hard: false },
  { cidr: "172.16.0.0/12", category: "private", hard: false },
  { cidr: "192.168.0.0/16", category: "private", hard: false },
  { cidr: "100.64.0.0/10", category: "private", hard: false }, // carrier-grade NAT
  { cidr: "fc00::/7", category: "private", hard: false }, // unique local
  { cidr: "192.0.0.0/24", category: "reserved", hard: false },
  { cidr: "198.18.0.0/15", category: "reserved", hard: false },
  { cidr: "240.0.0.0/4", category: "reserved", hard: false },
  { cidr: "::/96", category: "reserved", hard: false }, // IPv4-compatible (deprecated)
  { cidr: "64:ff9b::/96", category: "reserved", hard: false }, // NAT64: an IPv4 address in disguise
  { cidr: "64:ff9b:1::/48", category: "reserved", hard: false },
  { cidr: "2002::/16", category: "reserved", hard: false }, // 6to4: likewise
  { cidr: "fec0::/10", category: "reserved", hard: false }, // site-local (deprecated)
];

export const defaultGuardRules: readonly GuardRule[] = [...hardGuardRules, ...softGuardRules];

export interface AddressGuardOptions {
  /**
   * The built-in set. Replace it only in tests (the suite runs upstreams on 127.0.0.1); production
   * code passes nothing and gets `defaultGuardRules`.
   */
  rules?: readonly GuardRule[];
  /** Airlock's job address pool(s), e.g. `10.200.0.0/16`: one job never reaches another. Hard. */
  jobPool?: readonly string[];
  /** More hard-denied ranges (the host's LAN, say). */
  extraDeny?: readonly string[];
  /**
   * The host's own addresses, hard-denied: the proxy runs on the host, so a connection it opens
   * to one of them reaches services bound to 0.0.0.0 that the job's input chain keeps it from.
   * Re-read at most once a second (interfaces come and go with test hosts and the operator's
   * changes; a job's own host end is in the job pool, denied anyway), since reading them costs
   * 60 µs and up per call, on every new connection; injectable for tests. A connection the kernel
   * routes back to the host despite a stale list is still cut (upstream.ts, reachedThisHost).
   * Loopback is left to the loopback rule, which tests lift to reach their upstreams.
   */
  hostAddresses?: () => Iterable<string>;
}

export type GuardVerdict =
  | { ok: true; ip: IpAddress; address: string }
  | { ok: false; category: AddressCategory; address: string };

export interface AddressGuard {
  /**
   * `explicitlyAllowed` says whether the job's policy lists this address; it lifts soft rules only.
   * `name` is the host name the address was resolved from, if any: a wrapper may trust an address
   * for one name only (an operator's pinned internal host), never for every name that resolves to
   * it. The address returned is the canonical form the proxy must connect to.
   */
  check(address: string, explicitlyAllowed?: (ip: IpAddress) => boolean, name?: string): GuardVerdict;
}

interface Compiled {
  cidr: Cidr;
  category: AddressCategory;
  hard: boolean;
}

function compile(cidr: string, category: AddressCategory, hard: boolean): Compiled {
  const c = parseCidr(cidr);
  if (!c) throw new Error(`address guard: "${cidr}" is not a CIDR range`);
  return { cidr: c, category, hard };
}

/**
 * Every address configured on this host's interfaces, `lo` included: an address added to `lo`
 * (a service or anycast address) is as local as any other.
 */
export function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const a of list ?? []) out.push(a.address);
  return out;
}

/** interfaceAddresses, re-read when the last reading is older than `maxAgeMs`. */
function cachedInterfaceAddresses(maxAgeMs = 1_000): () => string[] {
  let at = Number.NEGATIVE_INFINITY;
  let addresses: string[] = [];
  return () => {
    const now = performance.now();
    if (now - at > maxAgeMs) {
      addresses = interfaceAddresses();
      at = now;
    }
    return addresses;
  };
}

function isLoopback(ip: IpAddress): boolean {
  return ip.family === 4 ? ip.bytes[0] === 127 : ip.bytes.every((b, i) => b === (i === 15 ? 1 : 0));
}

export function createAddressGuard(options: AddressGuardOptions = {}): AddressGuard {
  // Hard rules first, so an address in both a private range and the job pool is named as the pool.
  const rules: Compiled[] = [
    ...(options.jobPool ?? []).map((c) => compile(c, "job-pool", true)),
    ...(options.extraDeny ?? []).map((c) => compile(c, "denied", true)),
    ...(options.rules ?? defaultGuardRules).map((r) => compile(r.cidr, r.category, r.hard)),
  ].sort((a, b) => Number(b.hard) - Number(a.hard));
  const hostAddresses = options.hostAddresses ?? cachedInterfaceAddresses();
  const isHost = (ip: IpAddress, canonical: string): boolean => {
    if (isLoopback(ip)) return false;
    for (const a of hostAddresses()) {
      const h = parseIp(a);
      if (h && formatIp(h) === canonical) return true;
    }
    return false;
  };
  return {
    check(address, explicitlyAllowed) {
      const ip = parseIp(address);
      if (!ip) return { ok: false, category: "invalid", address };
      const canonical = formatIp(ip);
      const matching = rules.filter((r) => cidrContains(r.cidr, ip));
      const hard = matching.find((r) => r.hard);
      if (hard) return { ok: false, category: hard.category, address: canonical };
      // Before the soft rules: a rule opening the host's LAN range must not open the host itself.
      if (isHost(ip, canonical)) return { ok: false, category: "host", address: canonical };
      const soft = matching.find((r) => !r.hard);
      if (soft && !explicitlyAllowed?.(ip)) return { ok: false, category: soft.category, address: canonical };
      return { ok: true, ip, address: canonical };
    },
  };
}
