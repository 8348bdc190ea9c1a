import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  compilePolicies,
  createPolicyEngine,
  type GetSecretInput,
  getSecretRequest,
  sampleGetSecretInput,
  secretEntityId,
  type WorkloadClaims,
} from "./index.js";

const defaults = createPolicyEngine(compilePolicies([]));

type Secret = Partial<GetSecretInput["secret"]>;
const prodSecret: Secret = { scope: "environment", environment: "production", name: "DEPLOY_KEY" };
const prodClaims: Partial<WorkloadClaims> = {
  environment: "production",
  sub: "repo:acme/web:environment:production",
};

describe("GetSecret default policies", () => {
  const cases: Array<[string, Partial<WorkloadClaims>, Secret, string[] | "allow"]> = [
    ["repo secret, push on protected main", {}, {}, "allow"],
    ["repo secret, unprotected branch", { ref: "refs/heads/x", ref_protected: "false" }, {}, "allow"],
    ["repo secret, pull_request", { event_name: "pull_request", ref_protected: "false" }, {}, "allow"],
    ["org secret of the token's owner", {}, { scope: "org", repo: "" }, "allow"],
    ["environment secret, token names the environment", prodClaims, prodSecret, "allow"],
    [
      "environment secret, pull_request",
      { ...prodClaims, event_name: "pull_request" },
      prodSecret,
      // A PR's ref never counts as protected, so the protected-ref rule fires too.
      ["environment-secrets-require-protected-ref", "pull-request-no-environment-secrets"],
    ],
    [
      "environment secret, pull_request_target claiming a protected ref",
      { ...prodClaims, event_name: "pull_request_target", ref_protected: "true" },
      prodSecret,
      ["environment-secrets-require-protected-ref", "pull-request-no-environment-secrets"],
    ],
    [
      "environment secret, token names another environment",
      { environment: "staging" },
      prodSecret,
      ["secret-environment-mismatch"],
    ],
    ["environment secret, token names no environment", {}, prodSecret, ["secret-environment-mismatch"]],
    [
      "environment secret, unprotected ref",
      { ...prodClaims, ref: "refs/heads/x", ref_protected: "false" },
      prodSecret,
      ["environment-secrets-require-protected-ref"],
    ],
    ["another repository's secret", {}, { repo: "acme/api" }, ["secret-outside-repository"]],
    [
      "another organisation's secret",
      {},
      { scope: "org", org: "evil", repo: "" },
      ["secret-outside-repository"],
    ],
  ];

  it.each(cases)("%s", (_name, claims, secret, expected) => {
    const d = defaults.decideGetSecret(sampleGetSecretInput(claims, secret));
    expect(d.errors).toEqual([]);
    if (expected === "allow") {
      expect(d).toMatchObject({ allowed: true, reasons: ["secret-scope-match"] });
    } else {
      expect(d.allowed).toBe(false);
      expect([...d.reasons].sort()).toEqual(expected);
    }
  });

  it("keeps RunJob and GetSecret apart: RunJob's permit does not grant secrets", () => {
    const onlyRunJob = createPolicyEngine(
      compilePolicies([
        {
          file: "x.cedar",
          text: `@id("no-secrets-at-all") forbid (principal, action == Airlock::Action::"GetSecret", resource);`,
        },
      ]),
    );
    expect(onlyRunJob.decideGetSecret(sampleGetSecretInput())).toMatchObject({
      allowed: false,
      reasons: ["no-secrets-at-all"],
    });
  });

  it("cannot be widened by a user permit across repositories", () => {
    const engine = createPolicyEngine(
      compilePolicies([
        {
          file: "wide.cedar",
          text: `@id("everything") permit (principal, action == Airlock::Action::"GetSecret", resource);`,
        },
      ]),
    );
    expect(engine.decideGetSecret(sampleGetSecretInput({}, { repo: "acme/api" }))).toMatchObject({
      allowed: false,
      reasons: ["secret-outside-repository"],
    });
  });

  it("builds the request with string claims, derived booleans and a Workload in its Repo", () => {
    const req = getSecretRequest(
      sampleGetSecretInput({ event_name: "pull_request", environment: undefined, ref_protected: "true" }),
    );
    expect(req.principal).toEqual({ type: "Airlock::Workload", id: "job_sample" });
    expect(req.resource).toEqual({ type: "Airlock::Secret", id: "repo:acme/web:NPM_TOKEN" });
    expect(req.context).toMatchObject({ isPullRequest: true, refProtected: false, hasEnvironment: false });
    expect((req.context.claims as Record<string, string>).environment).toBe("");
    expect(req.entities[1]).toMatchObject({ parents: [{ type: "Airlock::Repo", id: "acme/web" }] });
    expect(
      secretEntityId({ name: "K", scope: "environment", org: "acme", repo: "acme/web", environment: "prod" }),
    ).toBe("environment:acme/web:prod:K");
  });

  it("accepts the README's secret policy example", async () => {
    const readme = await readFile(
      join(dirname(fileURLToPath(import.meta.url)), "../secrets/README.md"),
      "utf8",
    );
    const example = /```cedar\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    expect(example).toContain("GetSecret");
    const engine = createPolicyEngine(compilePolicies([{ file: "README.cedar", text: example }]));
    const deployKey: Secret = { name: "DEPLOY_KEY" };
    expect(
      engine.decideGetSecret(
        sampleGetSecretInput({ ref: "refs/heads/x", ref_protected: "false" }, deployKey),
      ),
    ).toMatchObject({ allowed: false, reasons: ["deploy-key-protected-refs-only"] });
    expect(engine.decideGetSecret(sampleGetSecretInput({}, deployKey)).allowed).toBe(true);
  });
});
