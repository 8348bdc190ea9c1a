import { describe, expect, it } from "vitest";
import { AirlockError } from "../errors.js";
import { jobClaims, parseSubjectCustomization, subject } from "./claims.js";
import { pushInput } from "./test-support.js";

describe("jobClaims", () => {
  it("builds GitHub's claim set for a push to a branch", () => {
    const c = jobClaims(
      pushInput({ repository: { owner: "octo-org", name: "octo-repo", id: 74, ownerId: 65 }, actorId: 12 }),
    );
    expect(c).toEqual({
      sub: "repo:octo-org/octo-repo:ref:refs/heads/main",
      repository: "octo-org/octo-repo",
      repository_owner: "octo-org",
      repository_id: "74",
      repository_owner_id: "65",
      ref: "refs/heads/main",
      ref_type: "branch",
      ref_protected: "true",
      sha: "8d2c4ba8d2e5e0c3c48a3fd1b6fa1b9d3c7a1c0e",
      workflow: "CI",
      workflow_ref: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
      workflow_sha: "8d2c4ba8d2e5e0c3c48a3fd1b6fa1b9d3c7a1c0e",
      job_workflow_ref: "octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
      job_workflow_sha: "8d2c4ba8d2e5e0c3c48a3fd1b6fa1b9d3c7a1c0e",
      run_id: "run_abcdefghijklmnop",
      run_number: "42",
      run_attempt: "1",
      actor: "octocat",
      actor_id: "12",
      event_name: "push",
      runner_environment: "self-hosted",
      head_ref: "",
      base_ref: "",
    });
  });

  it("omits ids it does not know and the environment when there is none", () => {
    const c = jobClaims(pushInput());
    expect(c).not.toHaveProperty("repository_id");
    expect(c).not.toHaveProperty("repository_owner_id");
    expect(c).not.toHaveProperty("environment");
  });

  it("uses the tag ref for a tag", () => {
    const c = jobClaims(pushInput({ ref: "refs/tags/v1.2.0", refType: "tag", refProtected: false }));
    expect(c.sub).toBe("repo:octo-org/octo-repo:ref:refs/tags/v1.2.0");
    expect(c.ref_type).toBe("tag");
    expect(c.ref_protected).toBe("false");
  });

  it("uses pull_request for a pull request, with head and base refs", () => {
    const c = jobClaims(
      pushInput({
        ref: "refs/pull/7/merge",
        eventName: "pull_request",
        headRef: "feature/x",
        baseRef: "main",
      }),
    );
    expect(c.sub).toBe("repo:octo-org/octo-repo:pull_request");
    expect(c.head_ref).toBe("feature/x");
    expect(c.base_ref).toBe("main");
  });

  it("lets the environment win over the ref and over pull_request, as GitHub does", () => {
    expect(jobClaims(pushInput({ environment: "production" })).sub).toBe(
      "repo:octo-org/octo-repo:environment:production",
    );
    const pr = jobClaims(pushInput({ eventName: "pull_request", environment: "preview" }));
    expect(pr.sub).toBe("repo:octo-org/octo-repo:environment:preview");
    expect(pr.environment).toBe("preview");
  });

  it("writes a ':' inside a value as %3A", () => {
    expect(jobClaims(pushInput({ environment: "prod:eu" })).sub).toBe(
      "repo:octo-org/octo-repo:environment:prod%3Aeu",
    );
    expect(jobClaims(pushInput({ ref: "refs/heads/a:b" })).sub).toBe(
      "repo:octo-org/octo-repo:ref:refs/heads/a%3Ab",
    );
  });
});

describe("subject customization (include_claim_keys)", () => {
  it("builds sub from the listed claims in order, context meaning the default context part", () => {
    const claims = jobClaims(pushInput({ environment: "prod" }));
    expect(subject(claims, { includeClaimKeys: ["repository_owner", "context", "job_workflow_ref"] })).toBe(
      "repository_owner:octo-org:environment:prod:job_workflow_ref:octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
    );
    expect(subject(claims, { includeClaimKeys: ["repo", "context", "job_workflow_ref"] })).toBe(
      "repo:octo-org/octo-repo:environment:prod:job_workflow_ref:octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main",
    );
    expect(subject(claims, { includeClaimKeys: ["job_workflow_ref", "repository_owner"] })).toBe(
      "job_workflow_ref:octo-org/octo-repo/.github/workflows/ci.yml@refs/heads/main:repository_owner:octo-org",
    );
  });

  it("escapes ':' in every value and keeps empty claims as key:", () => {
    const claims = jobClaims(
      pushInput({ workflow: { name: "build: all", path: ".github/workflows/ci.yml" } }),
    );
    expect(subject(claims, { includeClaimKeys: ["workflow", "head_ref", "context"] })).toBe(
      "workflow:build%3A all:head_ref::ref:refs/heads/main",
    );
  });

  it("an empty list means the default", () => {
    const claims = jobClaims(pushInput());
    expect(subject(claims, { includeClaimKeys: [] })).toBe("repo:octo-org/octo-repo:ref:refs/heads/main");
  });

  it("is applied by jobClaims", () => {
    const c = jobClaims(pushInput(), { includeClaimKeys: ["repository", "ref_type", "context"] });
    expect(c.sub).toBe("repository:octo-org/octo-repo:ref_type:branch:ref:refs/heads/main");
  });

  it("the immutable form carries owner and repository ids", () => {
    const input = pushInput({
      repository: { owner: "octocat", name: "my-repo", ownerId: 123456, id: 456789 },
    });
    expect(jobClaims(input, { useImmutable: true }).sub).toBe(
      "repo:octocat@123456/my-repo@456789:ref:refs/heads/main",
    );
    expect(
      jobClaims(
        { ...input, environment: "prod" },
        { useImmutable: true, includeClaimKeys: ["repo", "context"] },
      ).sub,
    ).toBe("repo:octocat@123456/my-repo@456789:environment:prod");
  });

  it("refuses the immutable form without ids rather than issue a sub a trust policy does not expect", () => {
    expect(() => jobClaims(pushInput(), { useImmutable: true })).toThrow(AirlockError);
  });

  it("parses customizations at the edge, refusing unknown keys", () => {
    expect(parseSubjectCustomization({ includeClaimKeys: ["repo", "context"] })).toEqual({
      includeClaimKeys: ["repo", "context"],
    });
    expect(() => parseSubjectCustomization({ includeClaimKeys: ["repo", "aud"] })).toThrow(
      /subject customization/,
    );
    expect(() => parseSubjectCustomization({ includeClaimKeys: ["nope"] })).toThrow(AirlockError);
    expect(() => parseSubjectCustomization({ extra: true })).toThrow(AirlockError);
  });
});
