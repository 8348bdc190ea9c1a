/**
 * One network namespace per job, wired to the host by a veth pair whose host end carries every
 * rule that applies to the job (see README.md for the packet path).
 */
import { readFile, writeFile } from "node:fs/promises";
import { AirlockError } from "../errors.js";
import { type AddressPool, cidrContains, ipToInt, parseCidr } from "./address-pool.js";
import { withHostNetworkLock } from "./host-lock.js";
import { assertTableNames, DEFAULT_NAMES, jobNames } from "./names.js";
import {
  ALWAYS_DENIED,
  addJobScript,
  addPassthroughScript,
  baseScript,
  deleteJobCommands,
  FORWARD_GUARD_COMMENT,
  jobChains,
  type L4Proto,
  type NetworkMode,
  type TableNames,
} from "./nft.js";
import { CommandError, IP, NFT, NSENTER, networkFailure, nftApply, run } from "./run.js";

export interface ProxyPorts {
  /** Explicit HTTP proxy (HTTP_PROXY / HTTPS_PROXY with CONNECT). */
  http: number;
  /** Where tcp/80 from the job is redirected; the proxy routes by Host header. */
  transparentHttp: number;
  /** Where tcp/443 from the job is redirected; the proxy routes by TLS SNI. */
  transparentTls: number;
}

export interface JobNetworkOptions {
  jobId: string;
  pool: AddressPool;
  proxyPorts: ProxyPorts;
  /** Airlock's resolver port on the host end; the job's port 53 is redirected to it. */
  dnsPort: number;
  /** Airlock endpoints the job calls on hostAddr (OIDC, broker, artifact upload). */
  airlockPorts: readonly number[];
  mode?: NetworkMode;
  /** Extra destination CIDRs no job reaches directly (e.g. the host's LAN). */
  extraDenied?: readonly string[];
  /** Table and interface prefix; tests use their own so they never touch a live controller's. */
  names?: TableNames;
}

export interface Flow {
  ip: string;
  proto: L4Proto;
  port: number;
}

export interface JobNetwork {
  readonly jobId: string;
  readonly mode: NetworkMode;
  readonly short: string;
  readonly nsName: string;
  readonly nsPath: string;
  readonly hostIf: string;
  readonly jobIf: string;
  readonly hostAddr: string;
  readonly jobAddr: string;
  /** Let the job open ip:port directly (not through the proxy). Idempotent. */
  allowPassthrough(ip: string, port: number, proto?: L4Proto): Promise<void>;
  /** New tcp/udp flows the job forwarded (allowed) or tried to (denied) — non-HTTP traffic only. */
  flows(): Promise<{ allowed: Flow[]; denied: Flow[] }>;
  destroy(): Promise<void>;
}

const basePromises = new Map<string, Promise<void>>();

/** Creates `inet <table>` on first use (once per process and table); idempotent if it exists. */
export function ensureBase(names: TableNames = DEFAULT_NAMES): Promise<void> {
  let p = basePromises.get(names.table);
  if (!p) {
    p = setupBase(names);
    basePromises.set(names.table, p);
    p.catch(() => basePromises.delete(names.table));
  }
  return p;
}

/** Forget the memoized base (after a reaper removed the table). */
export function forgetBase(table: string): void {
  basePromises.delete(table);
}

async function setupBase(names: TableNames): Promise<void> {
  assertTableNames(names);
  try {
    await withHostNetworkLock(async () => {
      const forwarding = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim() === "1";
      // Forwarding already on may be another installation's doing (or a predecessor's): its guard
      // says the host did not forward. Carrying the guard too makes this installation one of those
      // that switch forwarding back off, and only the last of them does (see reaper.ts).
      const guard = !forwarding || (await anyForwardGuard());
      await nftApply(baseScript(names, guard));
      if (!forwarding) await writeFile("/proc/sys/net/ipv4/ip_forward", "1");
    });
  } catch (e) {
    throw networkFailure("cannot set up the airlock nftables table", e);
  }
}

/** Whether any installation's table (any table at all) carries the forwarding guard. */
export async function anyForwardGuard(): Promise<boolean> {
  const { stdout } = await run([NFT, "list", "ruleset"]);
  return stdout.includes(FORWARD_GUARD_COMMENT);
}

function assertPort(what: string, p: number): void {
  if (!Number.isInteger(p) || p < 1 || p > 65535) {
    throw new AirlockError("CONFIG_INVALID", `${what} ${p} is not a port`, { hint: "use 1-65535" });
  }
}

export async function createJobNetwork(opts: JobNetworkOptions): Promise<JobNetwork> {
  const names = opts.names ?? DEFAULT_NAMES;
  assertTableNames(names);
  const mode = opts.mode ?? "enforce";
  for (const [k, v] of Object.entries(opts.proxyPorts)) assertPort(`proxy port ${k}`, v);
  assertPort("dns port", opts.dnsPort);
  for (const p of opts.airlockPorts) assertPort("airlock port", p);
  const extraDenied = [...(opts.extraDenied ?? [])];
  const deniedCidrs = [...ALWAYS_DENIED, ...extraDenied].map((c) => {
    try {
      return parseCidr(c);
    } catch (e) {
      throw new AirlockError("CONFIG_INVALID", `invalid denied CIDR ${JSON.stringify(c)}`, {
        hint: "use a.b.c.d/n",
        cause: e,
      });
    }
  });
  const n = jobNames(opts.jobId, names);
  await ensureBase(names);
  const lease = opts.pool.allocate(opts.jobId);
  const net = new LinuxJobNetwork(opts.jobId, mode, n, lease.hostAddr, lease.jobAddr, names, () =>
    opts.pool.release(opts.jobId),
  );
  net.deniedCidrs = [opts.pool.cidr, ...deniedCidrs];
  try {
    await run([IP, "netns", "add", n.netns]);
    // Before any interface exists in it: no IPv6 at all inside (not even ::1 on lo).
    await run([
      NSENTER,
      `--net=${n.nsPath}`,
      "--",
      "/usr/sbin/sysctl",
      "-q",
      "-w",
      "net.ipv6.conf.all.disable_ipv6=1",
      "net.ipv6.conf.default.disable_ipv6=1",
    ]);
    await run([IP, "link", "add", n.hostIf, "type", "veth", "peer", "name", n.jobIf, "netns", n.netns]);
    // No IPv6 link-local on the host end either: nothing for the job to talk to over v6.
    await writeFile(`/proc/sys/net/ipv6/conf/${n.hostIf}/disable_ipv6`, "1").catch(() => undefined);
    // Rules before the link is up: the job's first packet already meets them.
    await nftApply(
      addJobScript(names, {
        short: n.short,
        hostIf: n.hostIf,
        hostAddr: lease.hostAddr,
        jobAddr: lease.jobAddr,
        pool: opts.pool.cidr,
        mode,
        proxyPorts: opts.proxyPorts,
        dnsPort: opts.dnsPort,
        airlockPorts: opts.airlockPorts,
        extraDenied,
      }),
    );
    await run([IP, "-b", "-"], `addr add ${lease.hostAddr}/30 dev ${n.hostIf}\nlink set ${n.hostIf} up\n`);
    await run(
      [IP, "-n", n.netns, "-b", "-"],
      [
        "link set lo up",
        `addr add ${lease.jobAddr}/30 dev ${n.jobIf}`,
        `link set ${n.jobIf} up`,
        `route add default via ${lease.hostAddr} dev ${n.jobIf}`,
        "",
      ].join("\n"),
    );
  } catch (e) {
    await net.destroy().catch(() => undefined);
    if (e instanceof CommandError && /File exists/.test(e.stderr)) {
      throw new AirlockError("SANDBOX_FAILED", `network namespace ${n.netns} already exists`, {
        hint: "a previous controller left it behind: restart the controller so its reaper removes it",
        cause: e,
      });
    }
    throw networkFailure(`cannot create the network of job ${opts.jobId}`, e);
  }
  return net;
}

class LinuxJobNetwork implements JobNetwork {
  readonly short: string;
  readonly nsName: string;
  readonly nsPath: string;
  readonly hostIf: string;
  readonly jobIf: string;
  deniedCidrs: ReturnType<typeof parseCidr>[] = [];
  private readonly passthrough = new Set<string>();
  private destroying: Promise<void> | undefined;

  constructor(
    readonly jobId: string,
    readonly mode: NetworkMode,
    n: ReturnType<typeof jobNames>,
    readonly hostAddr: string,
    readonly jobAddr: string,
    private readonly names: TableNames,
    private readonly release: () => void,
  ) {
    this.short = n.short;
    this.nsName = n.netns;
    this.nsPath = n.nsPath;
    this.hostIf = n.hostIf;
    this.jobIf = n.jobIf;
  }

  async allowPassthrough(ip: string, port: number, proto: L4Proto = "tcp"): Promise<void> {
    if (this.destroying)
      throw new AirlockError("SANDBOX_FAILED", `network of job ${this.jobId} is destroyed`);
    assertPort("passthrough port", port);
    if (proto !== "tcp" && proto !== "udp") throw new TypeError(`bad protocol ${proto}`);
    let n: number;
    try {
      n = ipToInt(ip);
    } catch {
      throw new AirlockError("POLICY_DENIED", `passthrough address ${JSON.stringify(ip)} is not IPv4`);
    }
    if (this.mode === "block") {
      throw new AirlockError("POLICY_DENIED", `job ${this.jobId} runs with egress blocked`, {
        hint: "block mode has no passthrough",
      });
    }
    if (proto === "tcp" && (port === 80 || port === 443)) {
      throw new AirlockError("POLICY_DENIED", `tcp/${port} always goes through the egress proxy`, {
        hint: "allow the host name in the proxy's egress rules instead",
      });
    }
    if (this.deniedCidrs.some((c) => cidrContains(c, n))) {
      throw new AirlockError("POLICY_DENIED", `passthrough to ${ip} is never allowed`, {
        hint: "loopback, link-local/metadata, multicast, the job pool and denied ranges stay closed",
      });
    }
    const key = `${ip} . ${proto} . ${port}`;
    if (this.passthrough.has(key)) return;
    await nftApply(addPassthroughScript(this.names, this.short, ip, port, proto));
    this.passthrough.add(key);
  }

  async flows(): Promise<{ allowed: Flow[]; denied: Flow[] }> {
    const c = jobChains(this.short);
    return {
      allowed: await readFlowSet(this.names.table, c.allowedFlows),
      denied: await readFlowSet(this.names.table, c.deniedFlows),
    };
  }

  destroy(): Promise<void> {
    this.destroying ??= this.teardown();
    return this.destroying;
  }

  private async teardown(): Promise<void> {
    const errors: unknown[] = [];
    const ignoreMissing = (e: unknown) => {
      if (!(e instanceof CommandError && /No such file|Cannot find device|does not exist/i.test(e.stderr)))
        errors.push(e);
    };
    // Link first: deleting one end deletes both, and no packet flows while the rules go.
    await run([IP, "link", "del", this.hostIf]).catch(ignoreMissing);
    const cmds = deleteJobCommands(this.names, this.short, this.hostIf);
    try {
      await nftApply(`${cmds.join("\n")}\n`);
    } catch {
      // A half-created job: remove what exists, piece by piece.
      for (const cmd of cmds) await nftApply(`${cmd}\n`).catch(() => undefined);
    }
    await run([IP, "netns", "del", this.nsName]).catch(ignoreMissing);
    this.release();
    if (errors.length > 0) throw networkFailure(`teardown of job ${this.jobId} network`, errors[0]);
  }
}

async function readFlowSet(table: string, set: string): Promise<Flow[]> {
  const { stdout } = await run([NFT, "-j", "list", "set", "inet", table, set]);
  const doc = JSON.parse(stdout) as { nftables: { set?: { elem?: unknown[] } }[] };
  const out: Flow[] = [];
  for (const item of doc.nftables) {
    for (const e of item.set?.elem ?? []) {
      // Dynamic set elements come as {elem: {val: {concat: [...]}}} or {concat: [...]}.
      const v = (e as { elem?: { val?: unknown } }).elem?.val ?? e;
      const parts = (v as { concat?: unknown[] }).concat;
      if (parts?.length !== 3) continue;
      const [ip, proto, port] = parts;
      if (typeof ip === "string" && (proto === "tcp" || proto === "udp") && typeof port === "number")
        out.push({ ip, proto, port });
    }
  }
  return out.sort((a, b) => a.ip.localeCompare(b.ip) || a.port - b.port);
}
