import { describe, expect, it } from "vitest";
import {
  compilePolicies,
  createPolicyEngine,
  promoteRequest,
  samplePromoteInput,
  splitRef,
} from "./index.js";

const defaults = createPolicyEngine(compilePolicies([]));

describe("Promote default policies", () => {
  const cases: Array<[string, Parameters<typeof samplePromoteInput>[0], string, string[] | "allow"]> = [
    ["protected main to production", {}, "production", "allow"],
    ["protected tag to production", { ref: "refs/tags/v1.2.0" }, "production", "allow"],
    ["protected main to staging", {}, "staging", "allow"],
    [
      "unprotected branch to production",
      { ref: "refs/heads/feature", refProtected: false },
      "production",
      ["promote-production-requires-protected-ref"],
    ],
    // Nothing permits it: the built-in permit is for protected refs only.
    ["unprotected branch to staging", { ref: "refs/heads/feature", refProtected: false }, "staging", []],
    [
      "pull_request build claiming a protected ref, to production",
      { event: "pull_request", refProtected: true },
      "production",
      ["promote-production-requires-protected-ref", "promote-pull-request-never"],
    ],
    [
      "pull request merge ref, to staging",
      { event: "push", ref: "refs/pull/7/merge", refProtected: true },
      "staging",
      ["promote-pull-request-never"],
    ],
  ];

  it.each(cases)("%s", (_name, facts, channel, expected) => {
    const d = defaults.decidePromote(samplePromoteInput(facts, { channel }));
    expect(d.errors).toEqual([]);
    if (expected === "allow") {
      expect(d).toMatchObject({ allowed: true, reasons: ["promote-protected-ref"] });
    } else {
      expect(d.allowed).toBe(false);
      expect([...d.reasons].sort()).toEqual(expected);
    }
  });

  it("builds the context from the facts: short ref, PR never protected", () => {
    const req = promoteRequest(samplePromoteInput({ event: "pull_request_target", refProtected: true }));
    expect(req.context).toMatchObject({
      ref: "main",
      refType: "branch",
      refProtected: false,
      isPullRequest: true,
      repo: "acme/web",
      runnerId: "rnr_sample",
    });
    expect(splitRef("refs/tags/v1")).toEqual({ ref: "v1", refType: "tag" });
    expect(splitRef("main")).toEqual({ ref: "main", refType: "branch" });
  });

  it("a permit for every channel opens all of them but production, and never to pull requests", () => {
    const d = createPolicyEngine(
      compilePolicies([
        {
          file: "open.cedar",
          text: '@id("open") permit (principal, action == Airlock::Action::"Promote", resource);',
        },
      ]),
    );
    const unprotected = { refProtected: false, ref: "x" };
    expect(d.decidePromote(samplePromoteInput(unprotected, { channel: "dev" }))).toMatchObject({
      allowed: true,
      reasons: ["open"],
    });
    expect(d.decidePromote(samplePromoteInput(unprotected)).reasons).toEqual([
      "promote-production-requires-protected-ref",
    ]);
    expect(d.decidePromote(samplePromoteInput({ event: "pull_request" }, { channel: "dev" })).allowed).toBe(
      false,
    );
  });
});

describe("user Promote policies", () => {
  const engine = createPolicyEngine(
    compilePolicies([
      {
        file: "channels.cedar",
        text: `// Staging takes any branch (pull requests stay out: a built-in forbids them).
@id("staging-any-branch")
permit (principal, action == Airlock::Action::"Promote", resource == Airlock::Channel::"staging");

// Only release managers promote to production.
@id("production-release-managers")
forbid (principal, action == Airlock::Action::"Promote", resource == Airlock::Channel::"production")
unless { principal.roles.contains("release-manager") };

// Production artifacts come from the release workflow of our own builder.
@id("production-release-workflow")
forbid (principal, action == Airlock::Action::"Promote", resource == Airlock::Channel::"production")
unless {
  context.workflow == ".github/workflows/release.yml" &&
  context.builderId like "https://airlock.example/builders/*"
};

// Even a user permit cannot open production to unprotected refs.
@id("try-open-production")
permit (principal, action == Airlock::Action::"Promote", resource == Airlock::Channel::"production");
`,
      },
    ]),
  );

  it("a staging permit lets any branch in, but never a pull request", () => {
    const feature = { ref: "refs/heads/feature", refProtected: false };
    expect(engine.decidePromote(samplePromoteInput(feature, { channel: "staging" }))).toMatchObject({
      allowed: true,
      reasons: ["staging-any-branch"],
    });
    expect(
      engine.decidePromote(samplePromoteInput({ ...feature, event: "pull_request" }, { channel: "staging" })),
    ).toMatchObject({ allowed: false, reasons: ["promote-pull-request-never"] });
    // Other channels keep the default.
    expect(engine.decidePromote(samplePromoteInput(feature, { channel: "qa" })).allowed).toBe(false);
  });

  it("user forbids narrow production; a user permit cannot widen it past the built-ins", () => {
    expect(engine.decidePromote(samplePromoteInput()).allowed).toBe(true);
    expect(
      engine.decidePromote(samplePromoteInput({}, { actor: { id: "bob", roles: ["developer"] } })),
    ).toMatchObject({ allowed: false, reasons: ["production-release-managers"] });
    expect(engine.decidePromote(samplePromoteInput({ workflow: "ci.yml" }))).toMatchObject({
      allowed: false,
      reasons: ["production-release-workflow"],
    });
    expect(
      engine.decidePromote(samplePromoteInput({ ref: "refs/heads/feature", refProtected: false })),
    ).toMatchObject({ allowed: false, reasons: ["promote-production-requires-protected-ref"] });
  });
});
