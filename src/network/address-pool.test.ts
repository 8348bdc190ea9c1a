import { describe, expect, it } from "vitest";
import { AddressPool, cidrContains, intToIp, ipToInt, parseCidr } from "./address-pool.js";

describe("AddressPool", () => {
  it("hands out /30s in order, host .1 and job .2", () => {
    const pool = new AddressPool("10.213.0.0/16");
    expect(pool.capacity).toBe(16384);
    const a = pool.allocate("job_a");
    const b = pool.allocate("job_b");
    expect(a).toMatchObject({ subnet: "10.213.0.0/30", hostAddr: "10.213.0.1", jobAddr: "10.213.0.2" });
    expect(b).toMatchObject({ subnet: "10.213.0.4/30", hostAddr: "10.213.0.5", jobAddr: "10.213.0.6" });
  });

  it("reuses the lowest released block first (deterministic)", () => {
    const pool = new AddressPool("10.1.0.0/24");
    for (const j of ["a", "b", "c", "d"]) pool.allocate(j);
    pool.release("c");
    pool.release("a");
    expect(pool.allocate("e").hostAddr).toBe("10.1.0.1");
    expect(pool.allocate("f").hostAddr).toBe("10.1.0.9");
    expect(pool.allocate("g").hostAddr).toBe("10.1.0.17");
    pool.release("g");
    pool.release("d");
    expect(pool.allocate("h").hostAddr).toBe("10.1.0.13");
  });

  it("refuses when exhausted and when a job asks twice", () => {
    const pool = new AddressPool("10.1.0.0/29");
    pool.allocate("a");
    expect(() => pool.allocate("a")).toThrow(/already holds/);
    pool.allocate("b");
    expect(() => pool.allocate("c")).toThrow(/exhausted/);
    pool.release("a");
    expect(pool.allocate("c").jobAddr).toBe("10.1.0.2");
  });

  it("maps a job-end address (only) back to its job", () => {
    const pool = new AddressPool("10.1.0.0/24");
    pool.allocate("a");
    const b = pool.allocate("b");
    expect(pool.jobForAddress(b.jobAddr)).toBe("b");
    expect(pool.jobForAddress(b.hostAddr)).toBeUndefined();
    expect(pool.jobForAddress("10.1.0.10")).toBeUndefined();
    expect(pool.jobForAddress("10.2.0.2")).toBeUndefined();
    expect(pool.jobForAddress("nonsense")).toBeUndefined();
  });

  it("rejects bad pools", () => {
    expect(() => new AddressPool("10.1.0.1/24")).toThrow(/invalid network pool/);
    expect(() => new AddressPool("10.1.0.0/31")).toThrow(/smaller than one \/30/);
    expect(() => new AddressPool("fd00::/64")).toThrow(/invalid network pool/);
  });
});

describe("IPv4 helpers", () => {
  it("round-trips and tests containment", () => {
    expect(intToIp(ipToInt("169.254.169.254"))).toBe("169.254.169.254");
    expect(() => ipToInt("1.2.3.256")).toThrow();
    expect(() => ipToInt("1.2.3")).toThrow();
    const c = parseCidr("169.254.0.0/16");
    expect(cidrContains(c, "169.254.169.254")).toBe(true);
    expect(cidrContains(c, "169.255.0.0")).toBe(false);
    expect(cidrContains(parseCidr("0.0.0.0/0"), "255.255.255.255")).toBe(true);
  });
});
