/**
 * Pure generators of nft scripts. Everything Airlock does to the firewall lives in ONE table
 * (`inet airlock` by default) so the host's own rules are never read, flushed or rewritten.
 *
 * The base chains hook prerouting/input/forward/postrouting and dispatch packets by input
 * interface through verdict maps (`iifname vmap @in_jobs`). Each job adds its own chains and
 * sets, named by its short id, plus one element per map: creating or deleting a job is one atomic
 * transaction that touches nothing of another job.
 */
import type { Cidr } from "./address-pool.js";
import { formatCidr } from "./address-pool.js";

export type NetworkMode = "enforce" | "audit" | "block";
export type L4Proto = "tcp" | "udp";

/** Destinations no job reaches directly, whatever its mode: the host, link-local/metadata, etc. */
export const ALWAYS_DENIED = [
  "0.0.0.0/8",
  "127.0.0.0/8",
  "169.254.0.0/16",
  "224.0.0.0/4",
  "240.0.0.0/4",
] as const;

export const FORWARD_GUARD_COMMENT = "airlock: host did not forward before airlock";

/**
 * Every Airlock interface prefix starts with this, whatever the installation, so one
 * installation's forwarding guard never drops another's (or a test's) job traffic.
 */
export const INTERFACE_FAMILY = "al";

export interface TableNames {
  /** nft table name (family inet). */
  table: string;
  /** Interface name prefix shared by every job veth, e.g. "alk". */
  prefix: string;
}

export interface JobRules {
  short: string;
  hostIf: string;
  hostAddr: string;
  jobAddr: string;
  pool: Cidr;
  mode: NetworkMode;
  proxyPorts: { http: number; transparentHttp: number; transparentTls: number };
  dnsPort: number;
  airlockPorts: readonly number[];
  extraDenied: readonly string[];
}

export const jobChains = (short: string) => ({
  pre: `pre_${short}`,
  input: `in_${short}`,
  forward: `fwd_${short}`,
  passthrough: `pt_${short}`,
  allowedFlows: `ok_${short}`,
  deniedFlows: `no_${short}`,
});

/**
 * Idempotent: (re)creates the table skeleton. Base chains are flushed and refilled in the same
 * transaction, so running it again never duplicates rules and never touches per-job chains.
 */
export function baseScript(n: TableNames, forwardGuard: boolean): string {
  const t = `inet ${n.table}`;
  const ours = `"${n.prefix}*"`;
  const lines = [
    `add table ${t}`,
    `add map ${t} pre_jobs { type ifname : verdict; }`,
    `add map ${t} in_jobs { type ifname : verdict; }`,
    `add map ${t} fwd_jobs { type ifname : verdict; }`,
    `add chain ${t} prerouting { type nat hook prerouting priority dstnat; policy accept; }`,
    `add chain ${t} input { type filter hook input priority filter; policy accept; }`,
    `add chain ${t} forward { type filter hook forward priority filter; policy accept; }`,
    `add chain ${t} postrouting { type nat hook postrouting priority srcnat; policy accept; }`,
    `add chain ${t} deny`,
    `flush chain ${t} prerouting`,
    `flush chain ${t} input`,
    `flush chain ${t} forward`,
    `flush chain ${t} postrouting`,
    `flush chain ${t} deny`,
    // Refuse loudly (RST / ICMP) so a job fails fast instead of hanging on a connect timeout.
    `add rule ${t} deny meta l4proto tcp reject with tcp reset`,
    `add rule ${t} deny reject with icmpx type admin-prohibited`,
    `add rule ${t} prerouting iifname vmap @pre_jobs`,
    `add rule ${t} input iifname vmap @in_jobs`,
    // Fail closed: a veth of ours whose job chain is gone (or not yet there) gets nothing.
    `add rule ${t} input iifname ${ours} drop`,
    `add rule ${t} forward iifname vmap @fwd_jobs`,
    `add rule ${t} forward iifname ${ours} drop`,
    // Nobody opens connections into a job; replies to the job's own flows pass.
    `add rule ${t} forward oifname ${ours} ct state established,related accept`,
    `add rule ${t} forward oifname ${ours} drop`,
  ];
  if (forwardGuard) {
    // We switched net.ipv4.ip_forward on for jobs; keep every other interface pair as unrouted as
    // it was. The reaper reads this comment to know it should switch forwarding back off.
    lines.push(
      `add rule ${t} forward meta nfproto ipv4 iifname != "${INTERFACE_FAMILY}*" oifname != "${INTERFACE_FAMILY}*" drop comment "${FORWARD_GUARD_COMMENT}"`,
    );
  }
  lines.push(`add rule ${t} postrouting iifname ${ours} oifname != ${ours} masquerade`);
  return `${lines.join("\n")}\n`;
}

const flowKey = "ip daddr . meta l4proto . th dport";
const flowSet = "type ipv4_addr . inet_proto . inet_service; size 4096; flags dynamic;";

export function addJobScript(n: TableNames, r: JobRules): string {
  const t = `inet ${n.table}`;
  const c = jobChains(r.short);
  const H = r.hostAddr;
  const J = r.jobAddr;
  const denied = [...ALWAYS_DENIED, formatCidr(r.pool), ...r.extraDenied].join(", ");
  const lines = [
    `add chain ${t} ${c.pre}`,
    `add chain ${t} ${c.input}`,
    `add chain ${t} ${c.forward}`,
    `add set ${t} ${c.passthrough} { type ipv4_addr . inet_proto . inet_service; }`,
    `add set ${t} ${c.allowedFlows} { ${flowSet} }`,
    `add set ${t} ${c.deniedFlows} { ${flowSet} }`,
  ];
  const rule = (chain: string, body: string) => lines.push(`add rule ${t} ${chain} ${body}`);

  // prerouting (nat): HTTP(S) to anywhere lands on the transparent proxy; DNS on Airlock's resolver.
  if (r.mode !== "block") {
    rule(c.pre, `ip saddr ${J} tcp dport 80 dnat ip to ${H}:${r.proxyPorts.transparentHttp}`);
    rule(c.pre, `ip saddr ${J} tcp dport 443 dnat ip to ${H}:${r.proxyPorts.transparentTls}`);
    rule(c.pre, `ip saddr ${J} meta l4proto { tcp, udp } th dport 53 dnat ip to ${H}:${r.dnsPort}`);
  }

  const recordDenied = `ct state new meta l4proto { tcp, udp } add @${c.deniedFlows} { ${flowKey} }`;
  const recordAllowed = `ct state new meta l4proto { tcp, udp } add @${c.allowedFlows} { ${flowKey} }`;

  // input: the host end address only, and on it only the ports Airlock serves this job. What is
  // refused here (the host's other addresses, the gateway off Airlock's ports) is recorded too:
  // a job probing the host is exactly what the flow log must show.
  rule(c.input, "meta nfproto ipv6 drop");
  rule(c.input, `ip saddr != ${J} goto deny`);
  rule(c.input, `ip daddr != ${H} ${recordDenied}`);
  rule(c.input, `ip daddr != ${H} goto deny`);
  const tcpPorts =
    r.mode === "block"
      ? [...r.airlockPorts]
      : [r.proxyPorts.http, r.proxyPorts.transparentHttp, r.proxyPorts.transparentTls, ...r.airlockPorts];
  const unique = [...new Set(tcpPorts)].sort((a, b) => a - b);
  if (unique.length > 0) rule(c.input, `tcp dport { ${unique.join(", ")} } accept`);
  if (r.mode !== "block") rule(c.input, `meta l4proto { tcp, udp } th dport ${r.dnsPort} accept`);
  rule(c.input, recordDenied);
  rule(c.input, "goto deny");

  // forward: leaving the host. Never to the denied ranges; otherwise per mode.
  rule(c.forward, "meta nfproto ipv6 drop");
  rule(c.forward, `ip saddr != ${J} goto deny`);
  rule(c.forward, `ip daddr { ${denied} } ${recordDenied}`);
  rule(c.forward, `ip daddr { ${denied} } goto deny`);
  if (r.mode === "enforce") {
    rule(c.forward, `${flowKey} @${c.passthrough} ${recordAllowed}`);
    rule(c.forward, `${flowKey} @${c.passthrough} accept`);
  } else if (r.mode === "audit") {
    rule(c.forward, recordAllowed);
    rule(c.forward, "accept");
  }
  rule(c.forward, recordDenied);
  rule(c.forward, "goto deny");

  // Dispatch: last, so the job's chains are complete when its first packet can be matched.
  lines.push(
    `add element ${t} pre_jobs { "${r.hostIf}" : jump ${c.pre} }`,
    `add element ${t} in_jobs { "${r.hostIf}" : jump ${c.input} }`,
    `add element ${t} fwd_jobs { "${r.hostIf}" : jump ${c.forward} }`,
  );
  return `${lines.join("\n")}\n`;
}

/** The job's teardown as separate commands, in dependency order (one atomic script, or one by one). */
export function deleteJobCommands(n: TableNames, short: string, hostIf: string): string[] {
  const t = `inet ${n.table}`;
  const c = jobChains(short);
  return [
    `delete element ${t} pre_jobs { "${hostIf}" }`,
    `delete element ${t} in_jobs { "${hostIf}" }`,
    `delete element ${t} fwd_jobs { "${hostIf}" }`,
    `flush chain ${t} ${c.pre}`,
    `flush chain ${t} ${c.input}`,
    `flush chain ${t} ${c.forward}`,
    `delete chain ${t} ${c.pre}`,
    `delete chain ${t} ${c.input}`,
    `delete chain ${t} ${c.forward}`,
    `delete set ${t} ${c.passthrough}`,
    `delete set ${t} ${c.allowedFlows}`,
    `delete set ${t} ${c.deniedFlows}`,
  ];
}

export function addPassthroughScript(n: TableNames, short: string, ip: string, port: number, proto: L4Proto) {
  return `add element inet ${n.table} ${jobChains(short).passthrough} { ${ip} . ${proto} . ${port} }\n`;
}
