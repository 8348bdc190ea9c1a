import { describe, expect, it } from "vitest";
import { parseCidr } from "./address-pool.js";
import { jobNames, shortId } from "./names.js";
import { addJobScript, baseScript, deleteJobCommands, type JobRules } from "./nft.js";

const names = { table: "airlock", prefix: "alk" };
const n = jobNames("job_abcdefghijklmnop", names);
const rules = (mode: JobRules["mode"]): JobRules => ({
  short: n.short,
  hostIf: n.hostIf,
  hostAddr: "10.213.0.1",
  jobAddr: "10.213.0.2",
  pool: parseCidr("10.213.0.0/16"),
  mode,
  proxyPorts: { http: 3128, transparentHttp: 3129, transparentTls: 3130 },
  dnsPort: 5353,
  airlockPorts: [8443],
  extraDenied: ["192.168.0.0/16"],
});

describe("names", () => {
  it("fit IFNAMSIZ and are stable", () => {
    expect(n.hostIf.length).toBeLessThanOrEqual(15);
    expect(n.short).toMatch(/^[a-z2-7]{8}$/);
    expect(shortId("job_abcdefghijklmnop")).toBe(n.short);
    expect(n).toMatchObject({ netns: `alk-${n.short}`, nsPath: `/run/netns/alk-${n.short}` });
    expect(n.jobIf).toBe(`alk${n.short}j`);
  });
});

describe("nft scripts", () => {
  it("base script only touches our table and is idempotent by construction", () => {
    const s = baseScript(names, false);
    for (const line of s.trim().split("\n")) expect(line).toMatch(/ inet airlock( |$)/);
    expect(s).not.toMatch(/flush ruleset|flush table/);
    expect(s).not.toContain("host did not forward");
    expect(baseScript(names, true)).toContain("host did not forward");
  });

  it("enforce: redirects 80/443/53, opens only Airlock's ports on hostAddr, forwards only the set", () => {
    const s = addJobScript(names, rules("enforce"));
    expect(s).toContain("ip saddr 10.213.0.2 tcp dport 80 dnat ip to 10.213.0.1:3129");
    expect(s).toContain("ip saddr 10.213.0.2 tcp dport 443 dnat ip to 10.213.0.1:3130");
    expect(s).toContain("th dport 53 dnat ip to 10.213.0.1:5353");
    expect(s).toContain(`in_${n.short} ip daddr != 10.213.0.1 goto deny`);
    expect(s).toContain("tcp dport { 3128, 3129, 3130, 8443 } accept");
    // Refusals at the host end are recorded like refused forwards: the flow log shows host probes.
    expect(s).toContain(
      `in_${n.short} ip daddr != 10.213.0.1 ct state new meta l4proto { tcp, udp } add @no_${n.short}`,
    );
    expect(s).toMatch(
      new RegExp(
        `in_${n.short} ct state new meta l4proto \\{ tcp, udp \\} add @no_${n.short} .*\\n.*in_${n.short} goto deny\\n`,
      ),
    );
    expect(s).toMatch(
      /ip daddr \{ 0\.0\.0\.0\/8, 127\.0\.0\.0\/8, 169\.254\.0\.0\/16, .*10\.213\.0\.0\/16, 192\.168\.0\.0\/16 \} goto deny/,
    );
    expect(s).toContain(`ip daddr . meta l4proto . th dport @pt_${n.short} accept`);
    expect(s).not.toMatch(/fwd_\w+ accept$/m);
    // The dispatch elements come last: the chains are complete before a packet can reach them.
    expect(
      s
        .trim()
        .split("\n")
        .slice(-3)
        .every((l) => l.startsWith("add element")),
    ).toBe(true);
  });

  it("audit forwards everything but the denied ranges; block opens nothing but Airlock's ports", () => {
    expect(addJobScript(names, rules("audit"))).toMatch(new RegExp(`fwd_${n.short} accept$`, "m"));
    const b = addJobScript(names, rules("block"));
    expect(b).not.toContain("dnat");
    expect(b).toContain("tcp dport { 8443 } accept");
    expect(b).not.toContain("5353 accept");
    expect(b).not.toMatch(/@pt_\w+ accept/);
    expect(addJobScript(names, { ...rules("block"), airlockPorts: [] })).not.toContain("dport {");
  });

  it("teardown deletes exactly the job's pieces", () => {
    const cmds = deleteJobCommands(names, n.short, n.hostIf);
    for (const c of cmds) expect(c.includes(n.short)).toBe(true);
    expect(cmds.some((c) => /delete (table|chain inet airlock (input|forward|prerouting))\b/.test(c))).toBe(
      false,
    );
  });
});
