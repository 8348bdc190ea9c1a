import { domainToASCII } from "node:url";
import { type Cidr, cidrContains, type IpAddress, parseCidr, parseIp } from "./ip.js";

export type EgressMode = "enforce" | "audit" | "block";
export type FlowDecision = "allowed" | "denied" | "audited";

/** Ports a pattern without `:port` covers: plain HTTP and HTTPS, nothing else. */
export const webPorts: readonly number[] = [80, 443];

export type EgressRule =
  | { kind: "exact"; pattern: string; host: string; ports: readonly number[] }
  /** `*.example.com`: `suffix` is `.example.com`; at least one more label is required. */
  | { kind: "wildcard"; pattern: string; suffix: string; ports: readonly number[] }
  | { kind: "cidr"; pattern: string; cidr: Cidr; ports: readonly number[] };

export interface EgressPolicy {
  mode: EgressMode;
  allow: readonly EgressRule[];
  /** Checked first, in every mode but block: a host an operator forbids stays forbidden in audit. */
  deny: readonly EgressRule[];
}

export interface EgressPolicyInput {
  mode?: EgressMode;
  /** The job's `egress.allow`, then repo defaults, then what policy adds. Order only affects which rule is named. */
  allow?: readonly string[];
  deny?: readonly string[];
}

export interface Decision {
  allowed: boolean;
  decision: FlowDecision;
  /** The pattern that decided, or `mode:block`, `mode:audit`, `default-deny`, `deny:<pattern>`, `invalid-host`. */
  rule: string;
  /** The destination as it will be resolved and logged: lower-case ASCII, no trailing dot. */
  host: string;
  /** Set when the destination is an IP literal; such a destination is never resolved. */
  ip?: IpAddress;
}

const label = /^(?!-)[a-z0-9_-]{1,63}(?<!-)$/;

/**
 * Lower-case, one trailing dot dropped, IDN to punycode (`bücher.example` → `xn--bcher-kva.example`),
 * so that a pattern and a request that name the same host compare equal. Undefined for anything
 * that is not a DNS host name (IP literals are handled separately by the caller).
 */
export function normaliseHost(input: string): string | undefined {
  let s = input.trim();
  if (s.endsWith(".")) s = s.slice(0, -1);
  if (s === "" || s.length > 253) return undefined;
  // domainToASCII applies UTS #46 (case folding, punycode); it returns "" for what it refuses.
  const ascii = /^[\x21-\x7e]+$/.test(s) ? s.toLowerCase() : domainToASCII(s);
  if (!ascii || ascii.length > 253) return undefined;
  if (!ascii.split(".").every((l) => label.test(l))) return undefined;
  return ascii;
}

function parsePort(p: string | undefined): readonly number[] | { problem: string } {
  if (p === undefined) return webPorts;
  if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) return { problem: "port must be 1-65535" };
  return [Number(p)];
}

/**
 * Parses one allow or deny pattern:
 * - `example.com[:port]`: that host only (not its subdomains);
 * - `*.example.com[:port]`: any name *below* example.com, at any depth (a.example.com,
 *   a.b.example.com), but not example.com itself — list both when both are wanted;
 * - `10.0.0.0/8[:port]`, `203.0.113.7[:port]`, `[2001:db8::/32]:port`: an address or range, for
 *   destinations given as IP literals, and to open private ranges the address guard otherwise
 *   refuses. Names never match an address rule and addresses never match a name rule.
 * Without a port a rule covers 80 and 443 only. A bare `*` is refused: that is what audit mode is for.
 */
export function parseRule(input: string): EgressRule | { problem: string } {
  const s = input.trim();
  let hostPart: string;
  let portPart: string | undefined;
  const bracket = /^\[([^\]]+)\](?::(.*))?$/.exec(s);
  if (bracket) {
    hostPart = bracket[1] as string;
    portPart = bracket[2];
  } else {
    const colon = s.indexOf(":");
    if (colon >= 0 && s.indexOf(":", colon + 1) >= 0) return { problem: "write IPv6 addresses in brackets" };
    hostPart = colon < 0 ? s : s.slice(0, colon);
    portPart = colon < 0 ? undefined : s.slice(colon + 1);
  }
  const ports = parsePort(portPart);
  if ("problem" in ports) return ports;
  const portSuffix = portPart === undefined ? "" : `:${portPart}`;

  if (bracket || /^[\d.]+(\/\d+)?$/.test(hostPart)) {
    const cidr = parseCidr(hostPart);
    if (!cidr) return { problem: "not an IP address or CIDR range" };
    const text = cidr.family === 6 || bracket ? `[${cidr.text}]` : cidr.text;
    return { kind: "cidr", pattern: `${text}${portSuffix}`, cidr, ports };
  }
  if (hostPart === "*")
    return { problem: "a bare * allows everything; use mode: audit to learn what a job needs" };
  if (hostPart.startsWith("*.")) {
    const base = normaliseHost(hostPart.slice(2));
    if (!base || base.includes("*")) return { problem: "* is only allowed as a leading *." };
    return { kind: "wildcard", pattern: `*.${base}${portSuffix}`, suffix: `.${base}`, ports };
  }
  if (hostPart.includes("*")) return { problem: "* is only allowed as a leading *." };
  const host = normaliseHost(hostPart);
  if (!host) return { problem: "not a host name" };
  return { kind: "exact", pattern: `${host}${portSuffix}`, host, ports };
}

export class EgressPolicyError extends Error {
  override readonly name = "EgressPolicyError";
  constructor(
    readonly pattern: string,
    readonly problem: string,
  ) {
    super(`egress pattern "${pattern}" is invalid: ${problem}`);
  }
}

/** Compiles patterns once per job; throws EgressPolicyError naming the first bad pattern. */
export function compilePolicy(input: EgressPolicyInput): EgressPolicy {
  const compile = (list: readonly string[] = []) =>
    list.map((p) => {
      const r = parseRule(p);
      if ("problem" in r) throw new EgressPolicyError(p, r.problem);
      return r;
    });
  return { mode: input.mode ?? "enforce", allow: compile(input.allow), deny: compile(input.deny) };
}

function matches(rule: EgressRule, host: string, ip: IpAddress | undefined, port: number): boolean {
  if (!rule.ports.includes(port)) return false;
  switch (rule.kind) {
    case "exact":
      return ip === undefined && host === rule.host;
    case "wildcard":
      return ip === undefined && host.length > rule.suffix.length && host.endsWith(rule.suffix);
    case "cidr":
      return ip !== undefined && cidrContains(rule.cidr, ip);
  }
}

/** The allow rule that lists this address and port, if any (an IP literal, or a resolved address). */
export function addressRule(policy: EgressPolicy, ip: IpAddress, port: number): EgressRule | undefined {
  return policy.allow.find((r) => r.kind === "cidr" && matches(r, "", ip, port));
}

/**
 * The name-level decision for one destination. It does not resolve anything: the caller resolves
 * allowed (and audited) names and puts every address through the address guard. In enforce mode a
 * name no rule lists is refused before any DNS query is made for it.
 */
export function decide(policy: EgressPolicy, dest: { host: string; port: number }): Decision {
  const ip = parseIp(dest.host);
  const host = ip ? dest.host.replace(/^\[|\]$/g, "").toLowerCase() : normaliseHost(dest.host);
  if (policy.mode === "block")
    return { allowed: false, decision: "denied", rule: "mode:block", host: host ?? dest.host };
  if (host === undefined)
    return { allowed: false, decision: "denied", rule: "invalid-host", host: dest.host };
  const base = ip ? { host, ip } : { host };
  const denied = policy.deny.find((r) => matches(r, host, ip, dest.port));
  if (denied) return { allowed: false, decision: "denied", rule: `deny:${denied.pattern}`, ...base };
  const allowed = policy.allow.find((r) => matches(r, host, ip, dest.port));
  if (policy.mode === "audit") {
    return { allowed: true, decision: "audited", rule: allowed?.pattern ?? "mode:audit", ...base };
  }
  if (allowed) return { allowed: true, decision: "allowed", rule: allowed.pattern, ...base };
  return { allowed: false, decision: "denied", rule: "default-deny", ...base };
}

/**
 * What a job may do with a name before it connects: whether Airlock's DNS answers it at all, and
 * on which non-web ports (ssh, a database) it may then be reached directly rather than through
 * the proxy. Deny rules win; audit mode answers everything; block mode answers nothing.
 */
export function nameAccess(policy: EgressPolicy, name: string): { allowed: boolean; ports: number[] } {
  const host = normaliseHost(name);
  if (policy.mode === "block" || host === undefined) return { allowed: false, ports: [] };
  const covers = (r: EgressRule) =>
    (r.kind === "exact" && r.host === host) ||
    (r.kind === "wildcard" && host.length > r.suffix.length && host.endsWith(r.suffix));
  const denied = policy.deny.filter(covers);
  const ports = new Set<number>();
  for (const r of policy.allow.filter(covers)) {
    for (const p of r.ports) if (!denied.some((d) => d.ports.includes(p))) ports.add(p);
  }
  const open = [...ports].filter((p) => !webPorts.includes(p)).sort((a, b) => a - b);
  if (policy.mode === "audit") return { allowed: true, ports: open };
  return { allowed: ports.size > 0, ports: open };
}
