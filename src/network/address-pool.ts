/**
 * Per-job point-to-point subnets carved from one private IPv4 pool. Every job gets a /30: the host
 * end of its veth is .1, the job end .2 (.0 and .3 stay unused, so nothing is ever a broadcast
 * address). Allocation is deterministic — the lowest free block — so a given set of live jobs
 * always has the same addresses, which keeps tests and logs readable.
 */
import { AirlockError } from "../errors.js";

export const DEFAULT_POOL = "10.213.0.0/16";

export interface Cidr {
  /** Network address as an unsigned 32-bit integer. */
  base: number;
  prefix: number;
}

export interface Lease {
  jobId: string;
  index: number;
  /** The /30 as "a.b.c.d/30". */
  subnet: string;
  hostAddr: string;
  jobAddr: string;
}

export function ipToInt(ip: string): number {
  const parts = ip.split(".");
  if (parts.length !== 4) throw new TypeError(`not an IPv4 address: ${ip}`);
  let n = 0;
  for (const p of parts) {
    if (!/^\d{1,3}$/.test(p) || Number(p) > 255) throw new TypeError(`not an IPv4 address: ${ip}`);
    n = n * 256 + Number(p);
  }
  return n;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join(".");
}

export function parseCidr(cidr: string): Cidr {
  const m = /^([0-9.]+)\/(\d{1,2})$/.exec(cidr);
  const prefix = m ? Number(m[2]) : Number.NaN;
  if (!m || prefix > 32) throw new TypeError(`not an IPv4 CIDR: ${cidr}`);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const ip = ipToInt(m[1] as string);
  if ((ip & ~mask) >>> 0 !== 0) throw new TypeError(`CIDR ${cidr} has host bits set`);
  return { base: ip, prefix };
}

export function cidrContains(c: Cidr, ip: string | number): boolean {
  const n = typeof ip === "number" ? ip : ipToInt(ip);
  const size = 2 ** (32 - c.prefix);
  return n >= c.base && n < c.base + size;
}

export function formatCidr(c: Cidr): string {
  return `${intToIp(c.base)}/${c.prefix}`;
}

export class AddressPool {
  readonly cidr: Cidr;
  readonly capacity: number;
  private readonly byJob = new Map<string, Lease>();
  private readonly byIndex = new Map<number, Lease>();
  /** Released indexes below `next`, kept sorted so the lowest is reused first. */
  private free: number[] = [];
  private next = 0;

  constructor(cidr: string = DEFAULT_POOL) {
    try {
      this.cidr = parseCidr(cidr);
    } catch (e) {
      throw new AirlockError("CONFIG_INVALID", `invalid network pool ${JSON.stringify(cidr)}`, {
        hint: "use a private IPv4 CIDR of /30 or larger, e.g. 10.213.0.0/16",
        cause: e,
      });
    }
    if (this.cidr.prefix > 30) {
      throw new AirlockError("CONFIG_INVALID", `network pool ${cidr} is smaller than one /30`, {
        hint: "use a pool of /30 or larger; each job needs four addresses",
      });
    }
    this.capacity = 2 ** (30 - this.cidr.prefix);
  }

  toString(): string {
    return formatCidr(this.cidr);
  }

  contains(ip: string): boolean {
    return cidrContains(this.cidr, ip);
  }

  allocate(jobId: string): Lease {
    if (this.byJob.has(jobId)) {
      throw new AirlockError("CONFLICT", `job ${jobId} already holds a network lease`, {
        hint: "release the job's network before creating another one",
      });
    }
    let index: number;
    if (this.free.length > 0) index = this.free.shift() as number;
    else if (this.next < this.capacity) index = this.next++;
    else {
      throw new AirlockError("SANDBOX_UNAVAILABLE", `network pool ${this} is exhausted`, {
        hint: "wait for running jobs to finish or configure a larger pool",
        details: { capacity: this.capacity },
      });
    }
    const base = this.cidr.base + index * 4;
    const lease: Lease = {
      jobId,
      index,
      subnet: `${intToIp(base)}/30`,
      hostAddr: intToIp(base + 1),
      jobAddr: intToIp(base + 2),
    };
    this.byJob.set(jobId, lease);
    this.byIndex.set(index, lease);
    return lease;
  }

  release(jobId: string): void {
    const lease = this.byJob.get(jobId);
    if (!lease) return;
    this.byJob.delete(jobId);
    this.byIndex.delete(lease.index);
    if (lease.index === this.next - 1) {
      this.next--;
      // Fold trailing free blocks back so the free list stays short.
      while (this.free.length > 0 && this.free[this.free.length - 1] === this.next - 1) {
        this.free.pop();
        this.next--;
      }
    } else {
      const at = this.free.findIndex((i) => i > lease.index);
      this.free.splice(at === -1 ? this.free.length : at, 0, lease.index);
    }
  }

  lease(jobId: string): Lease | undefined {
    return this.byJob.get(jobId);
  }

  /** Which job sits at a job-end address (the proxy and DNS identify jobs by their source address). */
  jobForAddress(ip: string): string | undefined {
    let n: number;
    try {
      n = ipToInt(ip);
    } catch {
      return undefined;
    }
    if (!cidrContains(this.cidr, n) || (n - this.cidr.base) % 4 !== 2) return undefined;
    return this.byIndex.get((n - this.cidr.base - 2) / 4)?.jobId;
  }

  get size(): number {
    return this.byJob.size;
  }
}
