/**
 * Airlock's resolver for jobs. Each job gets its own UDP and TCP socket bound on the host end of
 * its veth (hostAddr:port). We bind per job rather than once on 0.0.0.0 because:
 *  - the socket the query arrived on names the job; no table lookup by source address, and a
 *    query on job A's socket from any address but A's job end is dropped;
 *  - nothing listens on the host's other interfaces, so the resolver is never an open resolver on
 *    the LAN, without relying on rules outside Airlock's table;
 *  - a job's sockets close with the job.
 *
 * Only A queries for names the job may reach are answered, with what the host resolver returns
 * minus forbidden addresses (loopback, link-local/metadata, the job pool, the host's own
 * addresses, multicast, configured extras) so an allowed name cannot be rebound onto the host.
 * AAAA is always empty: jobs have no IPv6. Other record types get an empty answer.
 */

import * as dgram from "node:dgram";
import { lookup } from "node:dns/promises";
import * as net from "node:net";
import { networkInterfaces } from "node:os";
import dnsPacket from "dns-packet";
import { AirlockError } from "../errors.js";
import { type AddressPool, type Cidr, cidrContains, ipToInt, parseCidr } from "./address-pool.js";
import type { JobNetwork } from "./job-network.js";
import { ALWAYS_DENIED, type L4Proto } from "./nft.js";
import { normaliseHost } from "./proxy/allowlist.js";

export interface PassthroughPort {
  port: number;
  proto?: L4Proto;
}

export interface DnsDecision {
  allowed: boolean;
  /** Non-HTTP ports this name may be reached on directly (ssh to a git server, a database…). */
  passthrough?: readonly PassthroughPort[];
}

export interface ResolvedAddress {
  address: string;
  ttl: number;
}

export type DnsRcode = "NOERROR" | "NXDOMAIN" | "REFUSED" | "SERVFAIL" | "FORMERR" | "NOTIMP";

export interface DnsQueryRecord {
  jobId: string;
  name: string;
  type: string;
  /** True when the job got at least one address (A) or a NOERROR empty answer (AAAA…). */
  answered: boolean;
  rcode: DnsRcode;
  addresses: string[];
  /** Why the job got nothing: policy, forbidden address (rebinding), upstream failure, block mode. */
  reason?: "denied" | "forbidden-address" | "resolve-failed" | "blocked" | "unsupported" | "invalid-name";
  /** Addresses the name resolved to but that were withheld. */
  withheld?: string[];
}

/** The parts of a job network the resolver needs (a JobNetwork satisfies it). */
export type DnsJob = Pick<JobNetwork, "jobId" | "hostAddr" | "jobAddr" | "mode" | "allowPassthrough">;

export interface DnsServerOptions {
  port: number;
  pool: AddressPool;
  decide(jobId: string, name: string): boolean | DnsDecision | Promise<boolean | DnsDecision>;
  /** Host resolver; defaults to getaddrinfo (node:dns lookup, honours /etc/hosts). Injectable in tests. */
  resolve?(name: string): Promise<ResolvedAddress[]>;
  onQuery?(record: DnsQueryRecord): void;
  extraDenied?: readonly string[];
  /** Withhold the host's own interface addresses (default true). */
  denyHostAddresses?: boolean;
  /** Upper bound on answer TTLs, seconds. */
  maxTtl?: number;
  /**
   * Whether an address an allowed name resolved to may be opened for direct (passthrough) access
   * on a port. Default: every address that is not forbidden. The egress service should pass its
   * proxy's address guard here, so a private range needs the same explicit rule for passthrough
   * as it does through the proxy.
   */
  admitPassthrough?(jobId: string, name: string, address: string, port: PassthroughPort): boolean;
}

const FLAG_RD = 1 << 8;
const FLAG_RA = 1 << 7;
const FLAG_TC = 1 << 9;
const RCODES: Record<DnsRcode, number> = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
};
const MAX_INFLIGHT_PER_JOB = 64;
/** A stub resolver needs one or two; more is a job holding the controller's descriptors. */
const MAX_TCP_PER_JOB = 16;
const TCP_IDLE_MS = 10_000;
const DEFAULT_LOOKUP_TTL = 30;

async function hostLookup(name: string): Promise<ResolvedAddress[]> {
  const res = await lookup(name, { family: 4, all: true });
  return res.map((r) => ({ address: r.address, ttl: DEFAULT_LOOKUP_TTL }));
}

interface JobSockets {
  job: DnsJob;
  udp: dgram.Socket;
  tcp: net.Server;
  conns: Set<net.Socket>;
  inflight: number;
}

export class DnsServer {
  private readonly jobs = new Map<string, JobSockets>();
  private readonly denied: Cidr[];
  private readonly resolve: (name: string) => Promise<ResolvedAddress[]>;
  private readonly maxTtl: number;

  constructor(private readonly opts: DnsServerOptions) {
    this.denied = [...ALWAYS_DENIED, ...(opts.extraDenied ?? [])].map(parseCidr);
    this.denied.push(opts.pool.cidr);
    this.resolve = opts.resolve ?? hostLookup;
    this.maxTtl = opts.maxTtl ?? 60;
  }

  /** Address the resolver will never hand to a job. */
  isForbidden(ip: string): boolean {
    let n: number;
    try {
      n = ipToInt(ip);
    } catch {
      return true;
    }
    if (this.denied.some((c) => cidrContains(c, n))) return true;
    if (this.opts.denyHostAddresses !== false) {
      for (const list of Object.values(networkInterfaces())) {
        for (const a of list ?? []) if (a.family === "IPv4" && a.address === ip) return true;
      }
    }
    return false;
  }

  /** Start answering for a job: UDP and TCP on hostAddr:port. */
  async addJob(job: DnsJob): Promise<void> {
    if (this.jobs.has(job.jobId)) return;
    const udp = dgram.createSocket({ type: "udp4" });
    const tcp = net.createServer({ pauseOnConnect: false });
    const entry: JobSockets = { job, udp, tcp, conns: new Set(), inflight: 0 };
    udp.on("message", (msg, rinfo) => {
      if (rinfo.address !== job.jobAddr || entry.inflight >= MAX_INFLIGHT_PER_JOB) return;
      entry.inflight++;
      this.answer(job, msg, "udp")
        .then((out) => {
          if (out) udp.send(out, rinfo.port, rinfo.address);
        })
        .catch(() => undefined)
        .finally(() => {
          entry.inflight--;
        });
    });
    udp.on("error", () => undefined);
    tcp.on("connection", (sock) => this.serveTcp(entry, sock));
    tcp.on("error", () => undefined);
    try {
      await new Promise<void>((resolve, reject) => {
        udp.once("error", reject);
        udp.bind({ address: job.hostAddr, port: this.opts.port, exclusive: true }, () => {
          udp.off("error", reject);
          resolve();
        });
      });
      await new Promise<void>((resolve, reject) => {
        tcp.once("error", reject);
        tcp.listen({ host: job.hostAddr, port: this.opts.port, exclusive: true }, () => {
          tcp.off("error", reject);
          resolve();
        });
      });
    } catch (e) {
      udp.close();
      tcp.close();
      throw new AirlockError(
        "SANDBOX_FAILED",
        `cannot bind the job resolver on ${job.hostAddr}:${this.opts.port}`,
        {
          hint: "create the job network before adding the job to the resolver",
          cause: e,
        },
      );
    }
    this.jobs.set(job.jobId, entry);
  }

  async removeJob(jobId: string): Promise<void> {
    const e = this.jobs.get(jobId);
    if (!e) return;
    this.jobs.delete(jobId);
    for (const c of e.conns) c.destroy();
    await Promise.all([
      new Promise<void>((r) => e.udp.close(() => r())),
      new Promise<void>((r) => e.tcp.close(() => r())),
    ]);
  }

  async close(): Promise<void> {
    await Promise.all([...this.jobs.keys()].map((id) => this.removeJob(id)));
  }

  private serveTcp(entry: JobSockets, sock: net.Socket): void {
    if (sock.remoteAddress !== entry.job.jobAddr || entry.conns.size >= MAX_TCP_PER_JOB) {
      sock.destroy();
      return;
    }
    entry.conns.add(sock);
    sock.setTimeout(TCP_IDLE_MS, () => sock.destroy());
    sock.on("close", () => entry.conns.delete(sock));
    sock.on("error", () => undefined);
    let buf = Buffer.alloc(0);
    let busy = false;
    const pump = async () => {
      if (busy) return;
      busy = true;
      try {
        while (buf.length >= 2) {
          const len = buf.readUInt16BE(0);
          if (buf.length < 2 + len) break;
          const msg = buf.subarray(2, 2 + len);
          buf = buf.subarray(2 + len);
          const out = await this.answer(entry.job, msg, "tcp");
          if (!out || sock.destroyed) continue;
          const head = Buffer.alloc(2);
          head.writeUInt16BE(out.length);
          sock.write(Buffer.concat([head, out]));
        }
      } catch {
        sock.destroy();
      } finally {
        busy = false;
      }
    };
    sock.on("data", (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk]);
      if (buf.length > 70_000) sock.destroy();
      else void pump();
    });
  }

  /** The response to one wire-format query, or nothing for garbage too short to answer. */
  async answer(job: DnsJob, msg: Buffer, transport: "udp" | "tcp"): Promise<Buffer | undefined> {
    let query: dnsPacket.DecodedPacket;
    try {
      query = dnsPacket.decode(msg);
    } catch {
      if (msg.length < 12) return undefined;
      return this.encode(msg.readUInt16BE(0), 0, [], [], "FORMERR", transport);
    }
    const rd = query.flag_rd ? FLAG_RD : 0;
    const questions = query.questions ?? [];
    const q = questions[0];
    const opcode = (query as { opcode?: string }).opcode;
    if (query.type !== "query" || opcode !== "QUERY" || questions.length !== 1 || !q) {
      return this.encode(query.id ?? 0, rd, questions, [], "NOTIMP", transport);
    }
    // The name is decided and resolved in one form, the one the proxy uses: lower-case ASCII, IDN
    // as punycode. A raw name could be decided as one host and resolved as another (getaddrinfo
    // stops at a NUL: "evil.test\0.allowed.test" would look up evil.test), or send the upstream
    // resolver a spelling nobody allowed. What is not a host name is never looked up.
    const normal = normaliseHost(q.name);
    const name = normal ?? q.name.toLowerCase().replace(/\.$/, "");
    const { records, rcode, record } = await this.decideAndResolve(job, normal, q.type, q.class);
    this.opts.onQuery?.({ jobId: job.jobId, name, type: q.type, ...record, rcode });
    // Answers carry the question's own spelling, so the stub matches them to what it asked.
    for (const r of records) r.name = q.name;
    return this.encode(query.id ?? 0, rd, questions, records, rcode, transport);
  }

  private async decideAndResolve(
    job: DnsJob,
    name: string | undefined,
    type: string,
    klass: string | undefined,
  ): Promise<{
    records: dnsPacket.Answer[];
    rcode: DnsRcode;
    record: Omit<DnsQueryRecord, "jobId" | "name" | "type" | "rcode">;
  }> {
    const nothing = (rcode: DnsRcode, reason: DnsQueryRecord["reason"], withheld?: string[]) => ({
      records: [],
      rcode,
      record: { answered: false, addresses: [], reason, ...(withheld ? { withheld } : {}) },
    });
    if (job.mode === "block") return nothing("REFUSED", "blocked");
    if (klass !== undefined && klass !== "IN") return nothing("REFUSED", "unsupported");
    if (name === undefined) return nothing("NXDOMAIN", "invalid-name");
    const decision = await this.decideFor(job, name);
    if (!decision.allowed) return nothing("NXDOMAIN", "denied");
    if (type !== "A") {
      // NODATA: the name exists for the job, but only IPv4 addresses are ever handed out.
      return { records: [], rcode: "NOERROR", record: { answered: true, addresses: [] } };
    }
    let resolved: ResolvedAddress[];
    try {
      resolved = await this.resolve(name);
    } catch (e) {
      const code = (e as { code?: string }).code;
      return code === "ENOTFOUND" || code === "ENODATA"
        ? nothing("NXDOMAIN", "resolve-failed")
        : nothing("SERVFAIL", "resolve-failed");
    }
    const safe: ResolvedAddress[] = [];
    const withheld: string[] = [];
    for (const r of resolved) {
      if (this.isForbidden(r.address)) withheld.push(r.address);
      else safe.push(r);
    }
    if (safe.length === 0) {
      return resolved.length === 0
        ? nothing("NXDOMAIN", "resolve-failed")
        : nothing("NXDOMAIN", "forbidden-address", withheld);
    }
    // The nft set must hold the address before the job can learn it, or its first connect fails.
    if (job.mode === "enforce") {
      for (const p of decision.passthrough ?? []) {
        const proto = p.proto ?? "tcp";
        if (proto === "tcp" && (p.port === 80 || p.port === 443)) continue;
        for (const r of safe) {
          if (this.opts.admitPassthrough?.(job.jobId, name, r.address, { port: p.port, proto }) === false)
            continue;
          await job.allowPassthrough(r.address, p.port, proto);
        }
      }
    }
    const ttl = (t: number) => Math.max(0, Math.min(this.maxTtl, Math.floor(t)));
    return {
      records: safe.map((r) => ({ type: "A", name, ttl: ttl(r.ttl), data: r.address, class: "IN" })),
      rcode: "NOERROR",
      record: {
        answered: true,
        addresses: safe.map((r) => r.address),
        ...(withheld.length > 0 ? { withheld } : {}),
      },
    };
  }

  private async decideFor(job: DnsJob, name: string): Promise<DnsDecision> {
    if (job.mode === "audit") return { allowed: true };
    const d = await this.opts.decide(job.jobId, name);
    return typeof d === "boolean" ? { allowed: d } : d;
  }

  private encode(
    id: number,
    rd: number,
    questions: dnsPacket.Question[],
    answers: dnsPacket.Answer[],
    rcode: DnsRcode,
    transport: "udp" | "tcp",
  ): Buffer {
    const flags = rd | FLAG_RA | RCODES[rcode];
    const out = dnsPacket.encode({ id, type: "response", flags, questions, answers });
    if (transport === "udp" && out.length > 512) {
      // Classic UDP limit without EDNS: signal truncation so the client retries over TCP.
      return dnsPacket.encode({ id, type: "response", flags: flags | FLAG_TC, questions, answers: [] });
    }
    return out;
  }
}
