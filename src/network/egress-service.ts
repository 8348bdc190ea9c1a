import type { Logger } from "pino";
import type { Registry } from "prom-client";
import { recordAudit } from "../audit/log.js";
import { AirlockError } from "../errors.js";
import type { Db } from "../store/database.js";
import { AddressPool } from "./address-pool.js";
import { DnsServer, type ResolvedAddress } from "./dns-server.js";
import { netnsEnterArgv, resolvConf } from "./enter.js";
import { createJobNetwork, type JobNetwork } from "./job-network.js";
import type { TableNames } from "./nft.js";
import {
  type AddressGuard,
  compilePolicy,
  createAddressGuard,
  createFlowMetrics,
  type EgressMode,
  EgressPolicyError,
  EgressProxy,
  type Flow,
  type FlowSink,
  type JobEgress,
  nameAccess,
  newFlowId,
  proxyEnv,
  type Resolver,
  StoreFlowSink,
  systemResolver,
  teeSinks,
} from "./proxy/index.js";
import { reapNetworks } from "./reaper.js";

export interface EgressPorts {
  /** Explicit proxy (HTTP_PROXY/HTTPS_PROXY). */
  forward: number;
  /** Transparent HTTP: the job's tcp/80 lands here. */
  http: number;
  /** Transparent TLS: the job's tcp/443 lands here. */
  tls: number;
  /** Airlock's resolver: the job's port 53 lands here. */
  dns: number;
}

export interface EgressServiceOptions {
  db: Db;
  logger: Logger;
  pool: string;
  ports: EgressPorts;
  names: TableNames;
  /** Ports of Airlock's own endpoints a job may always call on its host-end address. */
  airlockPorts?: number[];
  /** Names Airlock resolves itself (internal services), before the host resolver. */
  hosts?: Record<string, string[]>;
  /** Destinations no job reaches whatever its allowlist (the host's LAN, say). */
  denyCidrs?: string[];
  registry?: Registry;
}

export interface EgressRequest {
  jobId: string;
  runId: string;
  runnerId: string;
  mode: EgressMode;
  allow: readonly string[];
}

/** What a sandbox needs to join the job's network, and how to give it back. */
export interface ProvisionedEgress {
  enterArgv: string[];
  resolvConf: string;
  env: Record<string, string>;
  hostAddr: string;
  jobAddr: string;
  release(): Promise<void>;
}

interface LiveJob {
  net: JobNetwork;
  egress: JobEgress;
  listeners: { close(): Promise<void> }[];
  dnsRefusals?: number;
}

const maxDnsAuditsPerJob = 50;

/**
 * The network side of a job, end to end: a namespace with its rules, a resolver that answers only
 * what the job may reach, and the proxy listeners on the job's host-end address, all recorded in
 * the flow log. One per controller; jobs come and go through provision/release.
 */
export class EgressService {
  private readonly live = new Map<string, LiveJob>();
  private readonly byAddress = new Map<string, JobEgress>();

  private constructor(
    private readonly opts: EgressServiceOptions,
    private readonly pool: AddressPool,
    private readonly dns: DnsServer,
    private readonly proxy: EgressProxy,
    private readonly sink: StoreFlowSink,
    private readonly flows: FlowSink,
  ) {}

  /** Reaps what a crashed predecessor left (namespaces, veths, the nft table), then starts serving. */
  static async start(opts: EgressServiceOptions): Promise<EgressService> {
    await reapNetworks(opts.names);
    const pool = new AddressPool(opts.pool);
    const hosts = new Map(Object.entries(opts.hosts ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    const resolver: Resolver = async (name) => hosts.get(name.toLowerCase()) ?? systemResolver(name);
    const sink = new StoreFlowSink(opts.db, {
      onError: (err: unknown) => opts.logger.error({ err }, "could not store egress flows"),
    });
    const flows = opts.registry ? teeSinks(sink, createFlowMetrics(opts.registry)) : sink;
    const base = createAddressGuard({ jobPool: [opts.pool], extraDeny: opts.denyCidrs ?? [] });
    // Addresses the operator pinned in `network.hosts` (an internal registry on a private range)
    // may be reached through those names; private ranges otherwise stay closed to names, so a
    // public name that rebinds to an internal address still fails. Hard rules always apply.
    const pinned = new Set([...hosts.values()].flat());
    const guard: AddressGuard = {
      check: (address, explicit) =>
        base.check(address, (ip) => pinned.has(address) || (explicit?.(ip) ?? false)),
    };
    const service: { current?: EgressService } = {};
    const proxy = new EgressProxy({
      jobForClient: (address) => service.current?.byAddress.get(address),
      sink: flows,
      resolver,
      guard,
      onError: (err, ctx) => opts.logger.warn({ err, ...ctx }, "egress proxy"),
    });
    const dns = new DnsServer({
      port: opts.ports.dns,
      pool,
      decide: (jobId, name) => {
        const job = service.current?.live.get(jobId);
        if (!job) return false;
        const access = nameAccess(job.egress.policy, name);
        return { allowed: access.allowed, passthrough: access.ports.map((port) => ({ port })) };
      },
      resolve: async (name): Promise<ResolvedAddress[]> =>
        (await resolver(name)).filter((a) => !a.includes(":")).map((address) => ({ address, ttl: 30 })),
      onQuery: (q) => {
        if (q.answered) return;
        opts.logger.info({ jobId: q.jobId, name: q.name, reason: q.reason }, "dns refused");
        service.current?.auditDnsRefusal(q.jobId, q.name, q.reason ?? "refused", q.withheld ?? []);
      },
      ...(opts.denyCidrs ? { extraDenied: opts.denyCidrs } : {}),
    });
    service.current = new EgressService(opts, pool, dns, proxy, sink, flows);
    return service.current;
  }

  async provision(req: EgressRequest): Promise<ProvisionedEgress> {
    let policy: JobEgress["policy"];
    try {
      policy = compilePolicy({ mode: req.mode, allow: req.allow });
    } catch (err) {
      if (err instanceof EgressPolicyError) {
        throw new AirlockError("WORKFLOW_INVALID", `egress.allow: ${err.message}`, { cause: err });
      }
      throw err;
    }
    const net = await createJobNetwork({
      jobId: req.jobId,
      pool: this.pool,
      proxyPorts: {
        http: this.opts.ports.forward,
        transparentHttp: this.opts.ports.http,
        transparentTls: this.opts.ports.tls,
      },
      dnsPort: this.opts.ports.dns,
      airlockPorts: this.opts.airlockPorts ?? [],
      mode: req.mode,
      names: this.opts.names,
      ...(this.opts.denyCidrs ? { extraDenied: this.opts.denyCidrs } : {}),
    });
    const egress: JobEgress = { jobId: req.jobId, runId: req.runId, runnerId: req.runnerId, policy };
    const job: LiveJob = { net, egress, listeners: [] };
    this.live.set(req.jobId, job);
    this.byAddress.set(net.jobAddr, egress);
    try {
      await this.dns.addJob(net);
      if (req.mode !== "block") {
        for (const [role, port] of [
          ["forward", this.opts.ports.forward],
          ["http", this.opts.ports.http],
          ["tls", this.opts.ports.tls],
        ] as const) {
          job.listeners.push(await this.proxy.listen({ role, host: net.hostAddr, port }));
        }
      }
    } catch (err) {
      await this.release(req.jobId);
      throw new AirlockError(
        "SANDBOX_UNAVAILABLE",
        `cannot set up the job's network: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
    const proxyUrl = `http://${net.hostAddr}:${this.opts.ports.forward}`;
    return {
      enterArgv: netnsEnterArgv(net.nsPath),
      resolvConf: resolvConf(net.hostAddr),
      env: req.mode === "block" ? {} : proxyEnv(proxyUrl),
      hostAddr: net.hostAddr,
      jobAddr: net.jobAddr,
      release: () => this.release(req.jobId),
    };
  }

  /**
   * A refused lookup is an attempt like a refused connection: audited with the job's ids. Bounded
   * per job, so a job looping over lookups cannot flood the audit log; the rest are counted.
   */
  auditDnsRefusal(jobId: string, name: string, reason: string, withheld: string[]): void {
    const job = this.live.get(jobId);
    if (!job) return;
    job.dnsRefusals = (job.dnsRefusals ?? 0) + 1;
    if (job.dnsRefusals > maxDnsAuditsPerJob) return;
    const { runId, runnerId } = job.egress;
    void recordAudit(this.opts.db, {
      type: "egress.dns_refused",
      actor: runnerId,
      runId,
      jobId,
      runnerId,
      data: {
        name,
        reason,
        withheld,
        ...(job.dnsRefusals === maxDnsAuditsPerJob
          ? { note: "further refusals of this job are not audited" }
          : {}),
      },
    }).catch((err: unknown) => this.opts.logger.error({ err, jobId }, "could not audit a dns refusal"));
  }

  /** Teardown: stop serving the job, record its non-proxied flows, remove its network. */
  private async release(jobId: string): Promise<void> {
    const job = this.live.get(jobId);
    if (!job) return;
    this.byAddress.delete(job.net.jobAddr);
    await Promise.all(job.listeners.map((l) => l.close()));
    this.proxy.closeJob(jobId);
    await this.dns.removeJob(jobId);
    try {
      await this.recordDirectFlows(job);
    } finally {
      this.live.delete(jobId);
      await job.net.destroy();
    }
  }

  /** tcp/udp the job sent past the proxy (passthrough or refused), from the nft sets. */
  private async recordDirectFlows(job: LiveJob): Promise<void> {
    const { allowed, denied } = await job.net.flows();
    const now = new Date().toISOString();
    const base = {
      jobId: job.egress.jobId,
      runId: job.egress.runId,
      runnerId: job.egress.runnerId,
      mode: job.egress.policy.mode,
    };
    const record = (
      f: { ip: string; proto: string; port: number },
      decision: Flow["decision"],
      rule: string,
    ) =>
      this.flows.record({
        ...base,
        id: newFlowId(),
        host: f.ip,
        address: f.ip,
        port: f.port,
        protocol: "tcp",
        bytesUp: 0,
        bytesDown: 0,
        startedAt: now,
        durationMs: 0,
        connectMs: null,
        decision,
        rule,
        ...(f.proto === "udp" ? { error: "udp" } : {}),
      });
    for (const f of allowed) record(f, base.mode === "audit" ? "audited" : "allowed", "passthrough");
    for (const f of denied) record(f, "denied", base.mode === "block" ? "mode:block" : "nft:default-deny");
  }

  async close(): Promise<void> {
    await Promise.all([...this.live.keys()].map((id) => this.release(id)));
    await this.proxy.close();
    await this.dns.close();
    await this.sink.close();
    // No job is left: remove this installation's table (and switch forwarding back off if we
    // were the ones who turned it on), so a stopped controller leaves the host as it found it.
    await reapNetworks(this.opts.names);
  }
}
