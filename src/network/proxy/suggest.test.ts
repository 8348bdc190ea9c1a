import { describe, expect, it } from "vitest";
import { registrableDomain, suggestAllowlist } from "./suggest.js";

describe("registrableDomain", () => {
  it.each([
    ["api.github.com", "github.com"],
    ["github.com", "github.com"],
    ["a.b.example.co.uk", "example.co.uk"],
    ["cdn.example.com.au", "example.com.au"],
    ["x.example.io", "example.io"],
    ["me.github.io", "me.github.io"],
    ["a.me.github.io", "me.github.io"],
    ["bucket.s3.amazonaws.com", "bucket.s3.amazonaws.com"],
    ["ec2.us-east-1.amazonaws.com", "us-east-1.amazonaws.com"],
  ])("%s → %s", (host, domain) => expect(registrableDomain(host)).toBe(domain));
});

describe("suggestAllowlist", () => {
  const d = (host: string, port: number, count = 1) => ({ host, port, count });

  it.each([
    {
      name: "one exact host on 443 keeps its port",
      input: [d("registry.npmjs.org", 443, 12)],
      out: [{ pattern: "registry.npmjs.org:443", count: 12, hosts: ["registry.npmjs.org"] }],
    },
    {
      name: "80 and 443 together are written without a port",
      input: [d("deb.debian.org", 80, 3), d("deb.debian.org", 443, 2)],
      out: [{ pattern: "deb.debian.org", count: 5, hosts: ["deb.debian.org"] }],
    },
    {
      name: "two subdomains stay exact",
      input: [d("api.github.com", 443), d("codeload.github.com", 443)],
      out: [
        { pattern: "api.github.com:443", count: 1, hosts: ["api.github.com"] },
        { pattern: "codeload.github.com:443", count: 1, hosts: ["codeload.github.com"] },
      ],
    },
    {
      name: "three subdomains collapse; the domain itself stays exact",
      input: [
        d("api.github.com", 443, 2),
        d("codeload.github.com", 443),
        d("objects.github.com", 443),
        d("github.com", 443, 4),
      ],
      out: [
        { pattern: "github.com:443", count: 4, hosts: ["github.com"] },
        {
          pattern: "*.github.com:443",
          count: 4,
          hosts: ["api.github.com", "codeload.github.com", "objects.github.com"],
        },
      ],
    },
    {
      name: "collapse is per port",
      input: [d("a.x.com", 443), d("b.x.com", 443), d("c.x.com", 443), d("a.x.com", 22)],
      out: [
        { pattern: "*.x.com:443", count: 3, hosts: ["a.x.com", "b.x.com", "c.x.com"] },
        { pattern: "a.x.com:22", count: 1, hosts: ["a.x.com"] },
      ],
    },
    {
      name: "never a wildcard over a shared hosting suffix",
      input: [d("a.github.io", 443), d("b.github.io", 443), d("c.github.io", 443)],
      out: [
        { pattern: "a.github.io:443", count: 1, hosts: ["a.github.io"] },
        { pattern: "b.github.io:443", count: 1, hosts: ["b.github.io"] },
        { pattern: "c.github.io:443", count: 1, hosts: ["c.github.io"] },
      ],
    },
    {
      name: "IP literals stay exact and sort last",
      input: [d("203.0.113.7", 8080), d("z.com", 443)],
      out: [
        { pattern: "z.com:443", count: 1, hosts: ["z.com"] },
        { pattern: "203.0.113.7:8080", count: 1, hosts: ["203.0.113.7"] },
      ],
    },
    {
      name: "counts add up across runs of the same destination",
      input: [d("x.org", 443, 2), d("X.org", 443, 3)],
      out: [{ pattern: "x.org:443", count: 5, hosts: ["x.org"] }],
    },
    { name: "nothing in, nothing out", input: [], out: [] },
  ])("$name", ({ input, out }) => {
    expect(suggestAllowlist(input)).toEqual(out);
  });

  it("sorts by domain, right to left", () => {
    const out = suggestAllowlist([d("b.com", 443), d("a.b.com", 443), d("a.com", 443), d("z.a.com", 443)]);
    expect(out.map((s) => s.pattern)).toEqual(["a.com:443", "z.a.com:443", "b.com:443", "a.b.com:443"]);
  });
});
