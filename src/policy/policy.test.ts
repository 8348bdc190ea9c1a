import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AirlockError } from "../errors.js";
import {
  compilePolicies,
  createPolicyEngine,
  DEPLOY_SCOPES,
  deniedError,
  hasDeployPermission,
  loadPolicies,
  type PolicyEngine,
  permissionSet,
  type RunJobInput,
  runJobRequest,
  sampleRunJobInput,
} from "./index.js";

const defaults = createPolicyEngine(compilePolicies([]));

/** Runs `fn` and returns the AirlockError it throws. */
function caught(fn: () => unknown): AirlockError {
  try {
    fn();
  } catch (e) {
    if (e instanceof AirlockError) return e;
    throw e;
  }
  throw new Error("expected an AirlockError");
}

describe("default policies", () => {
  const cases: Array<[string, Partial<RunJobInput>, string[] | "allow"]> = [
    ["push on protected main", {}, "allow"],
    ["push on an unprotected branch without environment", { ref: "feature/x", refProtected: false }, "allow"],
    ["pull_request with read-only token", { event: "pull_request", refProtected: false }, "allow"],
    [
      "pull_request with statuses: write",
      { event: "pull_request", permissions: { statuses: "write" } },
      "allow",
    ],
    [
      "pull_request with an environment",
      { event: "pull_request", refProtected: true, environment: "staging" },
      // The PR's ref never counts as protected, so the protected-ref rule fires too.
      ["environment-requires-protected-ref", "pull-request-no-environment"],
    ],
    [
      "pull_request with id-token: write",
      { event: "pull_request", permissions: { "id-token": "write" } },
      ["pull-request-no-deploy"],
    ],
    [
      "pull_request_target with contents: write",
      { event: "pull_request_target", permissions: { contents: "write" } },
      ["pull-request-no-deploy"],
    ],
    [
      "pull_request_review_comment with deployments: write",
      { event: "pull_request_review_comment", permissions: { deployments: "write" } },
      ["pull-request-no-deploy"],
    ],
    [
      "environment from an unprotected branch",
      { ref: "feature/x", refProtected: false, environment: "production" },
      ["environment-requires-protected-ref"],
    ],
    [
      "environment from a protected tag",
      { ref: "v1.2.0", refType: "tag", refProtected: true, environment: "production" },
      "allow",
    ],
    [
      "workflow_dispatch deploying from protected main with id-token: write",
      { event: "workflow_dispatch", environment: "production", permissions: { "id-token": "write" } },
      "allow",
    ],
    ["privileged", { privileged: true }, ["no-privileged"]],
    ["host mount", { hostMounts: ["/var/run/docker.sock"] }, ["no-host-mounts"]],
    [
      "everything at once",
      {
        event: "pull_request_target",
        environment: "production",
        permissions: { packages: "write" },
        privileged: true,
        hostMounts: ["/"],
      },
      [
        "environment-requires-protected-ref",
        "no-host-mounts",
        "no-privileged",
        "pull-request-no-deploy",
        "pull-request-no-environment",
      ],
    ],
  ];

  it.each(cases)("%s", (_name, overrides, expected) => {
    const d = defaults.decideRunJob(sampleRunJobInput(overrides));
    expect(d.errors).toEqual([]);
    if (expected === "allow") {
      expect(d).toMatchObject({ allowed: true, reasons: ["run-job"] });
    } else {
      expect(d.allowed).toBe(false);
      expect([...d.reasons].sort()).toEqual(expected);
    }
    expect(d.durationUs).toBeGreaterThanOrEqual(0);
  });

  it("turns a denial into POLICY_DENIED naming the policies", () => {
    const d = defaults.decideRunJob(sampleRunJobInput({ privileged: true }));
    const err = deniedError(d);
    expect(err.code).toBe("POLICY_DENIED");
    expect(err.message).toContain("no-privileged");
  });
});

describe("request context", () => {
  it("expands permissions to scope:level strings where write implies read", () => {
    expect(permissionSet({ contents: "write", issues: "read", pages: "none" })).toEqual([
      "contents:read",
      "contents:write",
      "issues:read",
    ]);
  });

  it.each([...DEPLOY_SCOPES])("counts %s: write as a deploy permission, but not read", (scope) => {
    expect(hasDeployPermission({ [scope]: "write" })).toBe(true);
    expect(hasDeployPermission({ [scope]: "read" })).toBe(false);
  });

  it("does not count non-publishing writes as deploy permissions", () => {
    expect(hasDeployPermission({ issues: "write", statuses: "write", checks: "write" })).toBe(false);
  });

  it("never marks a pull request's ref as protected", () => {
    const ctx = runJobRequest(sampleRunJobInput({ event: "pull_request", refProtected: true })).context;
    expect(ctx).toMatchObject({ isPullRequest: true, refProtected: false });
  });

  it("derives hasEnvironment and hasHostMounts", () => {
    const none = runJobRequest(sampleRunJobInput()).context;
    expect(none).toMatchObject({ environment: "", hasEnvironment: false, hasHostMounts: false });
    const some = runJobRequest(sampleRunJobInput({ environment: "prod", hostMounts: ["/x"] })).context;
    expect(some).toMatchObject({ environment: "prod", hasEnvironment: true, hasHostMounts: true });
  });
});

describe("user policy directory", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "airlock-policy-"));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("loads only the built-ins without a directory", async () => {
    const loaded = await loadPolicies();
    expect(loaded.policies.map((p) => p.id)).toEqual([
      "run-job",
      "pull-request-no-environment",
      "pull-request-no-deploy",
      "environment-requires-protected-ref",
      "no-privileged",
      "no-host-mounts",
      "secret-scope-match",
      "secret-outside-repository",
      "pull-request-no-environment-secrets",
      "secret-environment-mismatch",
      "environment-secrets-require-protected-ref",
      "promote-protected-ref",
      "promote-pull-request-never",
      "promote-production-requires-protected-ref",
    ]);
  });

  it("adds a user forbid that takes effect and names it", async () => {
    await writeFile(
      join(dir, "pools.cedar"),
      `// The GPU pool is for the ML repo only.
@id("gpu-only-for-ml")
forbid (principal, action == Airlock::Action::"RunJob", resource)
when { context.pool == "gpu" }
unless { resource in Airlock::Repo::"acme/ml" };
`,
    );
    await writeFile(join(dir, "notes.txt"), "not a policy; ignored");
    await mkdir(join(dir, "nested.cedar"));
    const engine = createPolicyEngine(await loadPolicies({ dir }));
    expect(engine.decideRunJob(sampleRunJobInput({ pool: "gpu" }))).toMatchObject({
      allowed: false,
      reasons: ["gpu-only-for-ml"],
    });
    expect(engine.decideRunJob(sampleRunJobInput({ pool: "gpu", repo: "acme/ml" })).allowed).toBe(true);
    expect(engine.decideRunJob(sampleRunJobInput()).allowed).toBe(true);
  });

  it("names policies without @id by file and index, keeping file order", async () => {
    await writeFile(
      join(dir, "b.cedar"),
      `forbid (principal, action == Airlock::Action::"RunJob", resource) when { context.ref == "a;b" }; // ; in a comment
forbid (principal, action == Airlock::Action::"RunJob", resource) when { context.egressMode == "open" };
`,
    );
    await writeFile(
      join(dir, "a.cedar"),
      `@id("roles") forbid (principal, action == Airlock::Action::"RunJob", resource) unless { principal.roles.contains("developer") };`,
    );
    const loaded = await loadPolicies({ dir });
    const builtins = loaded.policies.filter((p) => p.file === "<builtin>").length;
    expect(loaded.policies.slice(builtins).map((p) => [p.id, `${p.line}:${p.col}`])).toEqual([
      ["roles", "1:1"],
      ["b.cedar:0", "1:1"],
      ["b.cedar:1", "2:1"],
    ]);
    const engine: PolicyEngine = createPolicyEngine(loaded);
    expect(engine.decideRunJob(sampleRunJobInput({ ref: "a;b" })).reasons).toEqual(["b.cedar:0"]);
    expect(engine.decideRunJob(sampleRunJobInput({ egress: { mode: "open", allow: [] } })).reasons).toEqual([
      "b.cedar:1",
    ]);
    expect(engine.decideRunJob(sampleRunJobInput({ actor: { id: "eve", roles: [] } })).reasons).toEqual([
      "roles",
    ]);
  });

  it("names file:line:col for a syntax error", async () => {
    const file = join(dir, "broken.cedar");
    // The é before the error makes Cedar's byte offset differ from the character column.
    await writeFile(
      file,
      `// café
@id("ok") forbid (principal, action == Airlock::Action::"RunJob", resource) when { context.privileged };

@id("bad") forbid (principal, action, resource) when { context.ref == "café" || context.pool = "gpu" };
`,
    );
    const err = await loadPolicies({ dir }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AirlockError);
    const e = err as AirlockError;
    expect(e.code).toBe("POLICY_INVALID");
    expect(e.position).toEqual({ file, line: 4, col: 81 });
    expect(e.message).toContain(`${file}:4:81:`);
    expect(e.hint).toContain("==");
  });

  it("rejects a policy that does not validate against the schema, naming where", () => {
    const e = caught(() =>
      compilePolicies([
        {
          file: "typo.cedar",
          text: `@id("fine") forbid (principal, action == Airlock::Action::"RunJob", resource) when { context.privileged };
@id("typo")
forbid (principal, action == Airlock::Action::"RunJob", resource)
when { context.pol == "gpu" };`,
        },
      ]),
    );
    expect(e.code).toBe("POLICY_INVALID");
    expect(e.position).toEqual({ file: "typo.cedar", line: 4, col: 8 });
    expect(e.message).toContain("pol");
    expect(e.hint).toContain("pool");
  });

  it("rejects a type error against the schema", () => {
    const e = caught(() =>
      compilePolicies([
        {
          file: "types.cedar",
          text: `forbid (principal, action == Airlock::Action::"RunJob", resource) when { context.privileged == "yes" };`,
        },
      ]),
    );
    expect(e.position?.file).toBe("types.cedar");
    expect(e.code).toBe("POLICY_INVALID");
  });

  it("rejects duplicate ids, including a built-in's", () => {
    const rule = (id: string) => `@id("${id}") forbid (principal, action, resource) when { false };`;
    const dup = caught(() =>
      compilePolicies([
        { file: "one.cedar", text: rule("mine") },
        { file: "two.cedar", text: `\n  ${rule("mine")}` },
      ]),
    );
    expect(dup.message).toBe('two.cedar:2:3: duplicate policy id "mine"');
    expect(dup.hint).toContain("one.cedar:1:1");
    const builtin = caught(() => compilePolicies([{ file: "x.cedar", text: rule("no-privileged") }]));
    expect(builtin.hint).toContain("<builtin>");
  });

  it("rejects a malformed @id and templates", () => {
    expect(
      caught(() =>
        compilePolicies([{ file: "a.cedar", text: `@id("") permit (principal, action, resource);` }]),
      ).code,
    ).toBe("POLICY_INVALID");
    const tpl = caught(() =>
      compilePolicies([{ file: "t.cedar", text: `permit (principal == ?principal, action, resource);` }]),
    );
    expect(tpl.position).toMatchObject({ file: "t.cedar", line: 1 });
  });

  it("fails when the directory is missing", async () => {
    const err = await loadPolicies({ dir: join(dir, "nope") }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: "POLICY_INVALID" });
  });

  it("denies when a forbid cannot be evaluated, rather than skipping it", () => {
    const engine = createPolicyEngine(
      compilePolicies([
        {
          file: "overflow.cedar",
          text: `@id("overflow") forbid (principal, action == Airlock::Action::"RunJob", resource)
when { context.pool == "big" && 9223372036854775807 + 1 > 0 };`,
        },
      ]),
    );
    const d = engine.decideRunJob(sampleRunJobInput({ pool: "big" }));
    expect(d).toMatchObject({ allowed: false, reasons: ["overflow"] });
    expect(d.errors[0]).toMatch(/^overflow: .*overflow/);
    expect(engine.decideRunJob(sampleRunJobInput()).allowed).toBe(true);
  });

  it("reports validator warnings with positions", () => {
    const loaded = compilePolicies([
      {
        file: "w.cedar",
        text: `\n@id("never") permit (principal, action == Airlock::Action::"RunJob", resource) when { false };`,
      },
    ]);
    expect(loaded.warnings).toEqual([expect.stringMatching(/^w\.cedar:2:\d+: .*impossible/)]);
  });

  it("accepts the README's example policy file", async () => {
    const readme = await readFile(join(dirname(fileURLToPath(import.meta.url)), "README.md"), "utf8");
    const example = /```cedar\n([\s\S]*?)```/.exec(readme)?.[1] ?? "";
    const engine = createPolicyEngine(compilePolicies([{ file: "README.cedar", text: example }]));
    expect(engine.decideRunJob(sampleRunJobInput({ pool: "gpu" })).reasons).toEqual(["gpu-only-for-ml"]);
    const deploy = sampleRunJobInput({ environment: "production" });
    expect(engine.decideRunJob(deploy).reasons).toEqual(["production-needs-release-manager"]);
    const manager = { ...deploy, actor: { id: "rm", roles: ["release-manager"] } };
    expect(engine.decideRunJob(manager).allowed).toBe(true);
  });
});
