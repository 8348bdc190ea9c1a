import { connect, type Socket } from "node:net";
import dnsPacket from "dns-packet";
import { describe, expect, it } from "vitest";
import { AddressPool } from "./address-pool.js";
import { type DnsJob, type DnsQueryRecord, DnsServer } from "./dns-server.js";
import type { NetworkMode } from "./nft.js";

const hosts: Record<string, string[]> = {
  "git.example.test": ["198.51.100.10"],
  "api.example.test": ["198.51.100.20", "198.51.100.21"],
  "loop.example.test": ["127.0.0.1"],
  "meta.example.test": ["169.254.169.254"],
  "mixed.example.test": ["169.254.169.254", "198.51.100.30"],
  "pool.example.test": ["10.213.4.2"],
  "many.example.test": Array.from({ length: 40 }, (_, i) => `198.51.100.${i + 100}`),
};

interface Decoded {
  id?: number;
  rcode: string;
  flag_tc: boolean;
  answers: { data?: unknown; ttl?: number }[];
}
// @types/dns-packet omits rcode and types answers as a union; the tests read the wire truth.
const decode = (b: Buffer) => dnsPacket.decode(b) as unknown as Decoded;

function setup(mode: NetworkMode = "enforce") {
  const records: DnsQueryRecord[] = [];
  const passthrough: string[] = [];
  const server = new DnsServer({
    port: 5353,
    pool: new AddressPool("10.213.0.0/16"),
    decide: (_job, name) =>
      name === "git.example.test"
        ? { allowed: true, passthrough: [{ port: 22 }, { port: 443 }, { port: 5432, proto: "tcp" }] }
        : name !== "secret.example.test" && name in hosts,
    resolve: async (name) => {
      const a = hosts[name];
      if (!a) throw Object.assign(new Error("not found"), { code: "ENOTFOUND" });
      return a.map((address) => ({ address, ttl: 300 }));
    },
    onQuery: (r) => records.push(r),
    denyHostAddresses: false,
  });
  const job: DnsJob = {
    jobId: "job_t",
    hostAddr: "10.213.0.1",
    jobAddr: "10.213.0.2",
    mode,
    allowPassthrough: async (ip, port, proto) => {
      passthrough.push(`${ip}:${port}/${proto}`);
    },
  };
  const ask = async (name: string, type: "A" | "AAAA" | "TXT" = "A", transport: "udp" | "tcp" = "udp") => {
    const q = dnsPacket.encode({
      id: 4242,
      type: "query",
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ name, type }],
    });
    const out = await server.answer(job, q, transport);
    if (!out) throw new Error("no answer");
    return decode(out);
  };
  return { server, job, records, passthrough, ask };
}

describe("DnsServer.answer", () => {
  it("answers allowed A queries and fills the passthrough set first (not for 80/443)", async () => {
    const { ask, passthrough, records } = setup();
    const r = await ask("Git.Example.Test.");
    expect(r.id).toBe(4242);
    expect(r.rcode).toBe("NOERROR");
    expect(r.answers?.map((a) => a.data)).toEqual(["198.51.100.10"]);
    expect(r.answers?.[0]?.ttl).toBe(60);
    expect(passthrough).toEqual(["198.51.100.10:22/tcp", "198.51.100.10:5432/tcp"]);
    expect(records).toEqual([
      {
        jobId: "job_t",
        name: "git.example.test",
        type: "A",
        answered: true,
        rcode: "NOERROR",
        addresses: ["198.51.100.10"],
      },
    ]);
  });

  it("refuses names the job may not reach with NXDOMAIN and records it", async () => {
    const { ask, records, passthrough } = setup();
    expect((await ask("secret.example.test")).rcode).toBe("NXDOMAIN");
    expect((await ask("unknown.test")).rcode).toBe("NXDOMAIN");
    expect(records.map((r) => [r.name, r.reason])).toEqual([
      ["secret.example.test", "denied"],
      ["unknown.test", "denied"],
    ]);
    expect(passthrough).toEqual([]);
  });

  it("never answers loopback, metadata or pool addresses (rebinding)", async () => {
    const { ask, records } = setup();
    expect((await ask("loop.example.test")).rcode).toBe("NXDOMAIN");
    expect((await ask("meta.example.test")).rcode).toBe("NXDOMAIN");
    expect((await ask("pool.example.test")).rcode).toBe("NXDOMAIN");
    const mixed = await ask("mixed.example.test");
    expect(mixed.answers?.map((a) => a.data)).toEqual(["198.51.100.30"]);
    expect(records.map((r) => r.reason)).toEqual([
      "forbidden-address",
      "forbidden-address",
      "forbidden-address",
      undefined,
    ]);
    expect(records[3]?.withheld).toEqual(["169.254.169.254"]);
  });

  it("AAAA and other types are empty for allowed names, NXDOMAIN for denied", async () => {
    const { ask } = setup();
    const aaaa = await ask("api.example.test", "AAAA");
    expect(aaaa.rcode).toBe("NOERROR");
    expect(aaaa.answers).toEqual([]);
    expect((await ask("api.example.test", "TXT")).answers).toEqual([]);
    expect((await ask("secret.example.test", "AAAA")).rcode).toBe("NXDOMAIN");
  });

  it("block mode refuses everything; audit mode answers every name without passthrough", async () => {
    const blocked = setup("block");
    expect((await blocked.ask("git.example.test")).rcode).toBe("REFUSED");
    const audit = setup("audit");
    expect((await audit.ask("secret.example.test")).answers).toHaveLength(0); // resolves to nothing here
    expect((await audit.ask("api.example.test")).answers).toHaveLength(2);
    expect((await audit.ask("git.example.test")).answers).toHaveLength(1);
    expect(audit.passthrough).toEqual([]);
    expect((await audit.ask("meta.example.test")).rcode).toBe("NXDOMAIN");
  });

  it("truncates big UDP answers so the client retries over TCP", async () => {
    const { ask } = setup();
    const udp = await ask("many.example.test", "A", "udp");
    expect(udp.flag_tc).toBe(true);
    expect(udp.answers).toEqual([]);
    expect((await ask("many.example.test", "A", "tcp")).answers).toHaveLength(40);
  });

  it("answers garbage with FORMERR or nothing", async () => {
    const { server, job } = setup();
    expect(await server.answer(job, Buffer.from([1, 2, 3]), "udp")).toBeUndefined();
    const bad = Buffer.alloc(14, 0xff);
    const out = await server.answer(job, bad, "udp");
    expect(out && decode(out).rcode).toBe("FORMERR");
  });

  it("treats the host's own addresses as forbidden by default", () => {
    const s = new DnsServer({ port: 1, pool: new AddressPool(), decide: () => true });
    expect(s.isForbidden("127.0.0.1")).toBe(true);
    expect(s.isForbidden("10.213.9.9")).toBe(true);
    expect(s.isForbidden("224.0.0.1")).toBe(true);
    expect(s.isForbidden("not-an-ip")).toBe(true);
    expect(s.isForbidden("198.51.100.1")).toBe(false);
  });
});

describe("DnsServer: attacks on the resolver", () => {
  /** A resolver that records every name it is asked (the "upstream"), over a naive decide. */
  function spied(mode: NetworkMode = "enforce", decide = (name: string) => name.endsWith(".example.test")) {
    const upstream: string[] = [];
    const passthrough: string[] = [];
    const admitted: string[] = [];
    const server = new DnsServer({
      port: 5353,
      pool: new AddressPool("10.213.0.0/16"),
      decide: (_job, name) => ({ allowed: decide(name), passthrough: [{ port: 22 }] }),
      resolve: async (name) => {
        upstream.push(name);
        return name === "internal.example.test"
          ? [{ address: "10.1.2.3", ttl: 5 }]
          : [{ address: "198.51.100.7", ttl: 5 }];
      },
      admitPassthrough: (_job, _name, address, p) => {
        admitted.push(`${address}:${p.port}/${p.proto}`);
        return !address.startsWith("10.");
      },
      denyHostAddresses: false,
    });
    const job: DnsJob = {
      jobId: "job_t",
      hostAddr: "10.213.0.1",
      jobAddr: "10.213.0.2",
      mode,
      allowPassthrough: async (ip, port, proto) => {
        passthrough.push(`${ip}:${port}/${proto}`);
      },
    };
    /** A query built by hand, so labels may hold any byte. */
    const ask = async (labels: (string | Buffer)[], type = 1) => {
      const parts = labels.map((l) => (typeof l === "string" ? Buffer.from(l, "latin1") : l));
      const q = Buffer.concat([
        Buffer.from([0x42, 0x42, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]),
        ...parts.flatMap((l) => [Buffer.from([l.length]), l]),
        Buffer.from([0, type >> 8, type & 255, 0, 1]),
      ]);
      const out = await server.answer(job, q, "udp");
      if (!out) throw new Error("no answer");
      return decode(out);
    };
    return { server, job, upstream, passthrough, admitted, ask };
  }

  it("a name with a NUL is never looked up (getaddrinfo would stop at it)", async () => {
    const { ask, upstream } = spied();
    const r = await ask(["internal\0", "evil", "example", "test"]);
    expect(r.rcode).toBe("NXDOMAIN");
    expect(upstream).toEqual([]);
  });

  it("in audit mode too, what is not a host name is not sent upstream", async () => {
    const { ask, upstream } = spied("audit");
    for (const labels of [
      ["evil\0", "test"],
      ["a b", "test"],
      ["x/y", "test"],
      ["-bad-", "test"],
    ]) {
      expect((await ask(labels)).rcode, JSON.stringify(labels)).toBe("NXDOMAIN");
    }
    expect(upstream).toEqual([]);
  });

  it("upstream sees exactly the normalised name that was decided, never another spelling", async () => {
    const { ask, upstream } = spied();
    // Upper case, a soft hyphen (UTS #46 drops it) and full-width letters all mean one name.
    await ask(["API", "Example", "TEST"]);
    await ask([Buffer.from("a\u00adpi", "utf8"), "example", "test"]);
    await ask([Buffer.from("ａｐｉ", "utf8"), "example", "test"]);
    expect(upstream).toEqual(["api.example.test", "api.example.test", "api.example.test"]);
  });

  it("denied names and non-A types are answered without asking upstream (no DNS exfiltration)", async () => {
    const { ask, upstream } = spied();
    for (const type of [1, 16, 28, 12, 255, 33]) {
      expect((await ask(["c2VjcmV0", "evil", "test"], type)).rcode).toBe("NXDOMAIN");
    }
    expect((await ask(["3", "2", "1", "10", "in-addr", "arpa"], 12)).rcode).toBe("NXDOMAIN");
    for (const type of [16, 28, 12, 255, 33]) {
      const r = await ask(["api", "example", "test"], type);
      expect(r.rcode).toBe("NOERROR");
      expect(r.answers).toEqual([]);
    }
    expect(upstream).toEqual([]);
  });

  it("passthrough is opened only for addresses the admit hook accepts", async () => {
    const { ask, passthrough, admitted } = spied();
    expect((await ask(["internal", "example", "test"])).answers).toHaveLength(1);
    expect((await ask(["api", "example", "test"])).answers).toHaveLength(1);
    expect(admitted).toEqual(["10.1.2.3:22/tcp", "198.51.100.7:22/tcp"]);
    expect(passthrough).toEqual(["198.51.100.7:22/tcp"]);
  });

  it("keeps only a few TCP connections per job", async () => {
    const port = 20_000 + Math.floor(Math.random() * 30_000);
    const server = new DnsServer({ port, pool: new AddressPool("10.213.0.0/16"), decide: () => false });
    const job: DnsJob = {
      jobId: "job_flood",
      hostAddr: "127.0.0.1",
      jobAddr: "127.0.0.1",
      mode: "enforce",
      allowPassthrough: async () => undefined,
    };
    await server.addJob(job);
    const socks: Socket[] = [];
    let closed = 0;
    try {
      for (let i = 0; i < 40; i++) {
        const s = connect(port, "127.0.0.1");
        s.on("error", () => undefined);
        s.on("close", () => closed++);
        socks.push(s);
      }
      await new Promise((r) => setTimeout(r, 500));
      expect(40 - closed).toBeLessThanOrEqual(16);
      expect(40 - closed).toBeGreaterThan(0);
    } finally {
      for (const s of socks) s.destroy();
      await server.close();
    }
  });
});
