import { describe, expect, it } from "vitest";
import { createAddressGuard, defaultGuardRules, interfaceAddresses } from "./address-guard.js";
import { addressRule, compilePolicy } from "./allowlist.js";
import { cidrContains, formatIp, parseCidr, parseIp } from "./ip.js";

describe("ip", () => {
  it.each([
    ["127.0.0.1", "127.0.0.1"],
    ["::1", "::1"],
    ["[::1]", "::1"],
    ["::ffff:127.0.0.1", "127.0.0.1"],
    ["::ffff:7f00:1", "127.0.0.1"],
    ["2001:DB8:0:0:0:0:0:1", "2001:db8::1"],
    ["fe80::1:0:0:1", "fe80::1:0:0:1"],
    ["::", "::"],
  ])("%s is %s", (input, out) => {
    const ip = parseIp(input);
    expect(ip && formatIp(ip)).toBe(out);
  });

  it.each([
    "",
    "1.2.3",
    "1.2.3.256",
    "01.2.3.4x",
    "::1::",
    "fe80::1%eth0",
    "example.com",
    "1:2:3:4:5:6:7:8:9",
  ])("refuses %j", (input) => expect(parseIp(input)).toBeUndefined());

  const ip = (s: string) => {
    const a = parseIp(s);
    if (!a) throw new Error(s);
    return a;
  };

  it("contains", () => {
    const c = parseCidr("10.0.0.0/8");
    expect(c && cidrContains(c, ip("10.255.0.1"))).toBe(true);
    expect(c && cidrContains(c, ip("11.0.0.1"))).toBe(false);
    const v6 = parseCidr("fe80::/10");
    expect(v6 && cidrContains(v6, ip("febf::1"))).toBe(true);
    expect(v6 && cidrContains(v6, ip("fec0::1"))).toBe(false);
  });
});

describe("default address guard", () => {
  const guard = createAddressGuard({ jobPool: ["10.200.0.0/16"], extraDeny: ["198.51.100.10/32"] });

  it.each([
    ["127.0.0.1", "loopback"],
    ["127.255.0.9", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["[::ffff:7f00:1]", "loopback"],
    ["169.254.169.254", "link-local"],
    ["::ffff:169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"],
    ["224.0.0.1", "multicast"],
    ["ff02::1", "multicast"],
    ["255.255.255.255", "broadcast"],
    ["10.200.3.4", "job-pool"],
    ["198.51.100.10", "denied"],
    ["10.0.0.1", "private"],
    ["172.16.5.5", "private"],
    ["192.168.1.1", "private"],
    ["fd00::1", "private"],
    ["64:ff9b::7f00:1", "reserved"],
    ["not-an-ip", "invalid"],
  ])("refuses %s (%s)", (address, category) => {
    expect(guard.check(address)).toMatchObject({ ok: false, category });
  });

  it.each(["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c", "198.51.100.11"])("admits %s", (a) => {
    expect(guard.check(a)).toMatchObject({ ok: true });
  });

  it("a rule listing a private range opens it; nothing opens a hard range", () => {
    const policy = compilePolicy({ allow: ["10.0.0.0/8:5432", "127.0.0.0/8:5432", "10.200.0.0/16:5432"] });
    const lift = (port: number) => (ip: Parameters<typeof addressRule>[1]) =>
      addressRule(policy, ip, port) !== undefined;
    expect(guard.check("10.1.2.3", lift(5432))).toMatchObject({ ok: true, address: "10.1.2.3" });
    expect(guard.check("10.1.2.3", lift(443))).toMatchObject({ ok: false, category: "private" });
    expect(guard.check("127.0.0.1", lift(5432))).toMatchObject({ ok: false, category: "loopback" });
    expect(guard.check("10.200.0.1", lift(5432))).toMatchObject({ ok: false, category: "job-pool" });
  });

  it("returns the canonical address to connect to", () => {
    expect(guard.check("::ffff:93.184.215.14")).toMatchObject({ ok: true, address: "93.184.215.14" });
  });
});

describe("the host's own addresses", () => {
  const hostAddresses = () => ["10.9.8.7", "203.0.113.9", "2001:db8::9", "127.0.0.1", "fe80::1"];
  const guard = createAddressGuard({ hostAddresses });
  const openAll = () => true;

  it.each(["10.9.8.7", "::ffff:10.9.8.7", "203.0.113.9", "[2001:db8::9]", "2001:DB8:0::9"])(
    "refuses %s as the host, even when a rule lists its range",
    (address) => {
      expect(guard.check(address, openAll)).toMatchObject({ ok: false, category: "host" });
    },
  );

  it("names hard ranges first and leaves loopback to the loopback rule", () => {
    expect(guard.check("fe80::1")).toMatchObject({ ok: false, category: "link-local" });
    expect(guard.check("127.0.0.1")).toMatchObject({ ok: false, category: "loopback" });
    const noLoopback = createAddressGuard({
      rules: defaultGuardRules.filter((r) => r.category !== "loopback"),
      hostAddresses,
    });
    expect(noLoopback.check("127.0.0.1")).toMatchObject({ ok: true });
  });

  it("reads the interfaces at every check, so an address added later is refused", () => {
    const live: string[] = [];
    const g = createAddressGuard({ hostAddresses: () => live });
    expect(g.check("198.51.100.77")).toMatchObject({ ok: true });
    live.push("198.51.100.77");
    expect(g.check("198.51.100.77")).toMatchObject({ ok: false, category: "host" });
  });

  it("by default, every non-loopback address of this machine is refused", () => {
    const g = createAddressGuard();
    for (const a of interfaceAddresses()) {
      const v = g.check(a, openAll);
      expect(v.ok, a).toBe(false);
    }
  });
});
