import { describe, expect, it } from "vitest";
import { compilePolicy, decide, EgressPolicyError, normaliseHost, parseRule } from "./allowlist.js";

describe("parseRule", () => {
  it.each([
    ["example.com", "example.com", "exact", [80, 443]],
    ["Example.COM.", "example.com", "exact", [80, 443]],
    ["example.com:8443", "example.com:8443", "exact", [8443]],
    ["*.Example.com", "*.example.com", "wildcard", [80, 443]],
    ["*.example.com:22", "*.example.com:22", "wildcard", [22]],
    ["bücher.example", "xn--bcher-kva.example", "exact", [80, 443]],
    ["10.0.0.0/8:5432", "10.0.0.0/8:5432", "cidr", [5432]],
    ["10.1.2.3/8", "10.0.0.0/8", "cidr", [80, 443]],
    ["203.0.113.7:8080", "203.0.113.7/32:8080", "cidr", [8080]],
    ["[2001:db8::/32]:443", "[2001:db8::/32]:443", "cidr", [443]],
    ["[2001:DB8::1]", "[2001:db8::1/128]", "cidr", [80, 443]],
  ])("%s → %s (%s, ports %j)", (input, pattern, kind, ports) => {
    expect(parseRule(input)).toMatchObject({ pattern, kind, ports });
  });

  it.each([
    ["*", "bare *"],
    ["a.*.com", "leading *."],
    ["*example.com", "leading *."],
    ["*.*.com", "leading *."],
    ["x.com:0", "port"],
    ["x.com:65536", "port"],
    ["x.com:", "port"],
    ["-bad.com", "host name"],
    ["bad-.com", "host name"],
    ["http://x.com", "port"],
    ["a b.com", "host name"],
    ["10.0.0.0/33", "CIDR"],
    ["300.1.1.1", "CIDR"],
    ["2001:db8::1", "brackets"],
    ["", "host name"],
    [`${"a".repeat(64)}.com`, "host name"],
  ])("refuses %j (%s)", (input, problem) => {
    const r = parseRule(input);
    expect(r).toHaveProperty("problem");
    expect((r as { problem: string }).problem).toContain(problem);
  });

  it("compilePolicy names the bad pattern", () => {
    expect(() => compilePolicy({ allow: ["ok.com", "a.*.com"] })).toThrow(EgressPolicyError);
    expect(() => compilePolicy({ allow: ["a.*.com"] })).toThrow(/"a\.\*\.com"/);
  });
});

describe("normaliseHost", () => {
  it.each([
    ["Example.COM", "example.com"],
    ["example.com.", "example.com"],
    ["BÜCHER.example", "xn--bcher-kva.example"],
    ["xn--bcher-kva.example", "xn--bcher-kva.example"],
    ["a_b.example.com", "a_b.example.com"],
  ])("%s → %s", (input, out) => expect(normaliseHost(input)).toBe(out));

  it.each(["", ".", "a..b", "exa mple.com", "ex/ample.com", "example.com..", "-a.com"])(
    "refuses %j",
    (input) => expect(normaliseHost(input)).toBeUndefined(),
  );
});

describe("decide", () => {
  const policy = compilePolicy({
    allow: ["registry.npmjs.org", "*.github.com", "db.internal:5432", "10.1.0.0/16:5432", "203.0.113.7:8080"],
    deny: ["evil.github.com"],
  });

  it.each([
    // host, port, allowed, rule
    ["registry.npmjs.org", 443, true, "registry.npmjs.org"],
    ["registry.npmjs.org", 80, true, "registry.npmjs.org"],
    ["REGISTRY.npmjs.org.", 443, true, "registry.npmjs.org"],
    ["registry.npmjs.org", 22, false, "default-deny"],
    ["npmjs.org", 443, false, "default-deny"],
    ["evil-registry.npmjs.org", 443, false, "default-deny"],
    ["registry.npmjs.org.evil.com", 443, false, "default-deny"],
    ["api.github.com", 443, true, "*.github.com"],
    ["a.b.github.com", 443, true, "*.github.com"],
    ["github.com", 443, false, "default-deny"], // a wildcard does not cover the domain itself
    ["notgithub.com", 443, false, "default-deny"],
    ["api.github.com.evil.com", 443, false, "default-deny"],
    ["evil.github.com", 443, false, "deny:evil.github.com"],
    ["db.internal", 5432, true, "db.internal:5432"],
    ["db.internal", 443, false, "default-deny"],
    ["10.1.2.3", 5432, true, "10.1.0.0/16:5432"],
    ["10.1.2.3", 443, false, "default-deny"],
    ["10.2.0.1", 5432, false, "default-deny"],
    ["203.0.113.7", 8080, true, "203.0.113.7/32:8080"],
    ["[::ffff:203.0.113.7]", 8080, true, "203.0.113.7/32:8080"], // mapped IPv6 is the IPv4 address
    ["203.0.113.8", 8080, false, "default-deny"],
    ["bad host", 443, false, "invalid-host"],
  ])("%s:%d → %s by %s", (host, port, allowed, rule) => {
    expect(decide(policy, { host, port })).toMatchObject({ allowed, rule });
  });

  it("a name never matches an address rule, an address never a name rule", () => {
    const p = compilePolicy({ allow: ["1.2.3.4", "example.com"] });
    expect(decide(p, { host: "1.2.3.4", port: 443 }).allowed).toBe(true);
    expect(decide(compilePolicy({ allow: ["example.com"] }), { host: "1.2.3.4", port: 443 }).allowed).toBe(
      false,
    );
  });

  it("audit allows everything and says so, but a deny rule still holds", () => {
    const p = compilePolicy({ mode: "audit", allow: ["known.com"], deny: ["pastebin.com"] });
    expect(decide(p, { host: "anything.org", port: 22 })).toMatchObject({
      allowed: true,
      decision: "audited",
      rule: "mode:audit",
    });
    expect(decide(p, { host: "known.com", port: 443 })).toMatchObject({
      decision: "audited",
      rule: "known.com",
    });
    expect(decide(p, { host: "pastebin.com", port: 443 })).toMatchObject({
      allowed: false,
      rule: "deny:pastebin.com",
    });
  });

  it("block denies everything, even listed hosts", () => {
    const p = compilePolicy({ mode: "block", allow: ["known.com"] });
    expect(decide(p, { host: "known.com", port: 443 })).toMatchObject({
      allowed: false,
      decision: "denied",
      rule: "mode:block",
    });
  });

  it("enforce with no rules denies everything (closed by default)", () => {
    expect(decide(compilePolicy({}), { host: "example.com", port: 443 })).toMatchObject({
      rule: "default-deny",
    });
  });
});

describe("decide: spellings that try to slip past the rules", () => {
  const policy = compilePolicy({ allow: ["registry.test", "*.example.com", "10.1.0.0/16:5432"] });

  it.each([
    // Numeric forms getaddrinfo would read as 127.0.0.1 / 0.0.0.0 are names no rule lists.
    "2130706433",
    "0177.0.0.1",
    "0x7f.1",
    "127.1",
    "0",
    // Address rules open addresses written as addresses, not names that resolve into them.
    "012.1.2.3",
    "10.1",
  ])("%s is a name no rule lists", (host) => {
    expect(decide(policy, { host, port: 5432 })).toMatchObject({ allowed: false, rule: "default-deny" });
  });

  it.each([
    "registry.test\0.evil.test",
    "evil.test\0.example.com",
    "registry.test\r\nHost: evil.test",
    "regi%73try.test",
    "registry.test/",
    "registry.test@evil.test",
    "registry.test..",
    `${"a".repeat(64)}.example.com`,
    `${"a.".repeat(127)}example.com`,
  ])("%j is not a host name", (host) => {
    expect(decide(policy, { host, port: 443 })).toMatchObject({ allowed: false, rule: "invalid-host" });
  });

  it.each([
    ["REGISTRY.TEST.", true],
    ["ｒｅｇｉｓｔｒｙ．test", true], // full-width forms fold to the same name, which is what is resolved
    ["example.com", false],
    ["evil-example.com", false],
    ["example.com.evil.test", false],
    ["a.example.com.", true],
  ])("%s → allowed %s", (host, allowed) => {
    const d = decide(policy, { host, port: 443 });
    expect(d.allowed).toBe(allowed);
    if (allowed) expect(d.host).toMatch(/^[a-z0-9.-]+$/);
  });
});
