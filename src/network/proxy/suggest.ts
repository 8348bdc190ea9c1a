import { isIpLiteral } from "./ip.js";

function upsert<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key);
  if (v === undefined) {
    v = make();
    map.set(key, v);
  }
  return v;
}

export interface Destination {
  host: string;
  port: number;
  /** How many flows went there. */
  count: number;
}

export interface Suggestion {
  /** An allow entry, as `egress.allow` takes it. */
  pattern: string;
  count: number;
  /** The hosts this entry covers, sorted. */
  hosts: string[];
}

/** Distinct subdomains of one registrable domain (on one port) that turn into `*.domain`. */
export const collapseThreshold = 3;

/**
 * Shared hosting suffixes whose subdomains belong to different owners (a subset of the Public
 * Suffix List's private section). `*.github.io` would open every GitHub Pages site, so names below
 * these are kept one label deeper: `a.x.github.io` and `b.x.github.io` may become `*.x.github.io`.
 */
export const sharedSuffixes: readonly string[] = [
  "github.io",
  "githubusercontent.com",
  "gitlab.io",
  "herokuapp.com",
  "netlify.app",
  "vercel.app",
  "pages.dev",
  "workers.dev",
  "r2.dev",
  "appspot.com",
  "web.app",
  "firebaseapp.com",
  "cloudfront.net",
  "amazonaws.com",
  "s3.amazonaws.com",
  "azurewebsites.net",
  "blob.core.windows.net",
  "azureedge.net",
  "fly.dev",
  "onrender.com",
  "ngrok.io",
  "ngrok-free.app",
  "trycloudflare.com",
];

const secondLevel = new Set(["co", "com", "net", "org", "gov", "edu", "ac", "or", "ne", "go", "gv"]);

/**
 * The registrable domain of a host, by a heuristic (no Public Suffix List is bundled): the last
 * two labels; the last three when the TLD is a two-letter country code under a generic second
 * level (`example.co.uk`, `example.com.au`); and one label below any shared hosting suffix above.
 */
export function registrableDomain(host: string): string {
  const labels = host.split(".");
  const shared = sharedSuffixes.filter((s) => host.endsWith(`.${s}`)).sort((a, b) => b.length - a.length)[0];
  if (shared) return labels.slice(-(shared.split(".").length + 1)).join(".");
  const tld = labels[labels.length - 1] ?? "";
  const sld = labels[labels.length - 2] ?? "";
  const n = tld.length === 2 && secondLevel.has(sld) ? 3 : 2;
  return labels.slice(-n).join(".");
}

function hostPart(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

/**
 * Proposes a small allowlist from what audit-mode runs reached:
 * 1. per port, names below one registrable domain collapse to `*.domain` once at least
 *    `collapseThreshold` distinct ones were seen (the domain itself stays an exact entry: a
 *    wildcard does not cover it); fewer stay exact;
 * 2. an entry seen on both 80 and 443 is written without a port (which means exactly those two);
 *    any other port is written out;
 * 3. sorted by domain (labels read right to left, so a domain's entries sit together), then
 *    port; each with its flow count and the hosts it covers.
 */
export function suggestAllowlist(destinations: readonly Destination[]): Suggestion[] {
  // pattern host ("*.x.com" or "a.x.com") -> port -> { count, hosts }
  const byHost = new Map<string, Map<number, { count: number; hosts: Set<string> }>>();
  const add = (key: string, port: number, count: number, hosts: Iterable<string>) => {
    const ports = upsert(byHost, key, () => new Map());
    const entry = upsert(ports, port, () => ({ count: 0, hosts: new Set() }));
    entry.count += count;
    for (const h of hosts) entry.hosts.add(h);
  };

  const byPort = new Map<number, Map<string, number>>();
  for (const d of destinations) {
    const host = d.host.toLowerCase();
    const hosts = upsert(byPort, d.port, () => new Map());
    hosts.set(host, (hosts.get(host) ?? 0) + d.count);
  }

  for (const [port, hosts] of byPort) {
    const groups = new Map<string, Map<string, number>>();
    for (const [host, count] of hosts) {
      if (isIpLiteral(host)) {
        add(hostPart(host), port, count, [host]);
        continue;
      }
      const domain = registrableDomain(host);
      if (host === domain) {
        add(host, port, count, [host]);
        continue;
      }
      const g = upsert(groups, domain, () => new Map());
      g.set(host, count);
    }
    for (const [domain, subs] of groups) {
      if (subs.size >= collapseThreshold) {
        add(
          `*.${domain}`,
          port,
          [...subs.values()].reduce((a, b) => a + b, 0),
          subs.keys(),
        );
      } else {
        for (const [host, count] of subs) add(host, port, count, [host]);
      }
    }
  }

  const out: (Suggestion & { key: string; port: number })[] = [];
  for (const [host, ports] of byHost) {
    const web80 = ports.get(80);
    const web443 = ports.get(443);
    if (web80 && web443) {
      ports.delete(80);
      ports.delete(443);
      const hosts = new Set([...web80.hosts, ...web443.hosts]);
      out.push({
        pattern: host,
        count: web80.count + web443.count,
        hosts: [...hosts].sort(),
        key: host,
        port: 0,
      });
    }
    for (const [port, e] of ports) {
      out.push({ pattern: `${host}:${port}`, count: e.count, hosts: [...e.hosts].sort(), key: host, port });
    }
  }
  // Reversed labels group a domain's entries: x.com, *.x.com, a.x.com, then y.com.
  const sortKey = (k: string) => (isIpLiteral(k) ? `~${k}` : k.split(".").reverse().join("."));
  out.sort((a, b) => {
    const ka = sortKey(a.key);
    const kb = sortKey(b.key);
    return ka < kb ? -1 : ka > kb ? 1 : a.port - b.port;
  });
  return out.map(({ pattern, count, hosts }) => ({ pattern, count, hosts }));
}
