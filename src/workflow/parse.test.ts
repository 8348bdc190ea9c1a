// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is GitHub expression syntax, not a JS template
import { describe, expect, it } from "vitest";
import { AirlockError } from "../errors.js";
import { defaultPermissions, egressPattern, parseWorkflow } from "./parse.js";
import type { WorkflowProblem } from "./types.js";

/** Strips the common indentation so YAML can be written inline and still have real line numbers. */
function yaml(strings: TemplateStringsArray, ...values: unknown[]): string {
  const text = String.raw({ raw: strings }, ...values).replace(/^\n/, "");
  const indent = Math.min(
    ...text
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => /^ */.exec(l)?.[0].length ?? 0),
  );
  return text
    .split("\n")
    .map((l) => l.slice(indent))
    .join("\n");
}

function failure(src: string): AirlockError {
  try {
    parseWorkflow(src, "wf.yml");
  } catch (e) {
    expect(e).toBeInstanceOf(AirlockError);
    expect((e as AirlockError).code).toBe("WORKFLOW_INVALID");
    return e as AirlockError;
  }
  throw new Error("expected the workflow to be refused");
}

const problems = (src: string) => failure(src).details?.errors as WorkflowProblem[];

/** Asserts exactly one problem, at line:col, whose message contains `text`. */
function expectOnly(src: string, line: number, col: number, text: string): WorkflowProblem {
  const ps = problems(src);
  expect(ps, JSON.stringify(ps, null, 2)).toHaveLength(1);
  expect(ps[0]).toMatchObject({ file: "wf.yml", line, col, message: expect.stringContaining(text) });
  return ps[0] as WorkflowProblem;
}

// A valid job body other tests build on.
const minimal = yaml`
  on: push
  jobs:
    test:
      runs-on: airlock
      steps:
        - run: echo hi
`;

describe("parseWorkflow: valid workflows", () => {
  it("parses a minimal workflow with closed defaults", () => {
    const wf = parseWorkflow(minimal, "wf.yml");
    expect(wf).toEqual({
      file: "wf.yml",
      on: { push: {} },
      permissions: defaultPermissions(),
      env: {},
      jobs: [
        {
          id: "test",
          runsOn: ["airlock"],
          needs: [],
          permissions: defaultPermissions(),
          env: {},
          outputs: {},
          timeoutMinutes: 360,
          steps: [
            {
              index: 0,
              run: "echo hi",
              env: {},
              with: {},
              continueOnError: false,
              position: { file: "wf.yml", line: 6, col: 9 },
            },
          ],
          secrets: [],
          privileged: false,
          hostMounts: [],
          position: { file: "wf.yml", line: 3, col: 3 },
        },
      ],
    });
    expect(wf.permissions.contents).toBe("read");
    expect(wf.permissions["id-token"]).toBe("none");
  });

  it("accepts every form of on:", () => {
    const on = (v: string) => parseWorkflow(minimal.replace("on: push", v), "wf.yml").on;
    expect(on("on: [push, pull_request]")).toEqual({ push: {}, pull_request: {} });
    expect(on("on:\n  push:\n  pull_request: {}")).toEqual({ push: {}, pull_request: {} });
    expect(on("on: { push: { branches: [main, 'release/**'], paths-ignore: [docs/**] } }")).toEqual({
      push: { branches: ["main", "release/**"], pathsIgnore: ["docs/**"] },
    });
    expect(on("on: { pull_request: { types: [opened, synchronize] } }")).toEqual({
      pull_request: { types: ["opened", "synchronize"] },
    });
    expect(on("on: { schedule: [{ cron: '0 3 * * 1' }] }")).toEqual({ schedule: { cron: ["0 3 * * 1"] } });
    expect(on("on: { push: { tags: v* } }")).toEqual({ push: { tags: ["v*"] } });
  });

  it("parses workflow_dispatch inputs", () => {
    const wf = parseWorkflow(
      minimal.replace(
        "on: push",
        yaml`
          on:
            workflow_dispatch:
              inputs:
                target:
                  description: where to deploy
                  required: true
                  type: choice
                  options: [staging, production]
                  default: staging
                dry-run: { type: boolean, default: false }
                count: { type: number, default: 3 }
                note:
        `,
      ),
      "wf.yml",
    );
    expect(wf.on.workflow_dispatch?.inputs).toEqual({
      target: {
        description: "where to deploy",
        required: true,
        type: "choice",
        options: ["staging", "production"],
        default: "staging",
      },
      "dry-run": { required: false, type: "boolean", default: false },
      count: { required: false, type: "number", default: 3 },
      note: { required: false, type: "string" },
    });
  });

  it("expands permission shorthands; a job's permissions replace the workflow's", () => {
    const wf = parseWorkflow(
      yaml`
        on: push
        permissions: read-all
        jobs:
          a: { runs-on: x, steps: [run: a] }
          b: { runs-on: x, permissions: write-all, steps: [run: b] }
          c: { runs-on: x, permissions: {}, steps: [run: c] }
          d: { runs-on: x, permissions: { id-token: write, pull-requests: read }, steps: [run: d] }
      `,
      "wf.yml",
    );
    const [a, b, c, d] = wf.jobs;
    expect(Object.values(wf.permissions).every((l) => l === "read")).toBe(true);
    expect(a?.permissions).toEqual(wf.permissions);
    expect(Object.values(b?.permissions ?? {}).every((l) => l === "write")).toBe(true);
    expect(Object.values(c?.permissions ?? {}).every((l) => l === "none")).toBe(true);
    expect(d?.permissions["id-token"]).toBe("write");
    expect(d?.permissions["pull-requests"]).toBe("read");
    expect(d?.permissions.contents).toBe("none");
  });

  it("reads every job and step key", () => {
    const wf = parseWorkflow(
      yaml`
        name: release
        run-name: Release by \${{ github.actor }}
        on: push
        env: { GLOBAL: 1.10, FLAG: true, EMPTY: }
        defaults: { run: { shell: bash, working-directory: app } }
        jobs:
          build:
            runs-on: [airlock, large]
            steps:
              - id: version
                run: echo "v=1" >> "$GITHUB_OUTPUT"
            outputs:
              version: \${{ steps.version.outputs.v }}
          deploy:
            name: Deploy \${{ needs.build.outputs.version }}
            needs: [build]
            runs-on: airlock
            if: github.ref == 'refs/heads/main'
            environment: { name: production, url: "https://example.com/\${{ steps.up.outputs.path }}" }
            timeout-minutes: 15
            continue-on-error: true
            env: { TOKEN: '\${{ secrets.DEPLOY_TOKEN }}' }
            egress: { allow: [Registry.NPMJS.org:443, "*.github.com"] }
            secrets: [DEPLOY_TOKEN]
            defaults: { run: { shell: sh } }
            steps:
              - uses: Actions/Checkout@8e5e7e5ab8b370d6c329ec480221332ada57f0ab
                with: { fetch-depth: 0 }
              - id: up
                name: Upload \${{ env.GLOBAL }}
                if: \${{ success() && steps.version == null }}
                run: ./deploy.sh
                shell: python
                working-directory: deploy
                env: { LEVEL: 3 }
                continue-on-error: true
                timeout-minutes: 2.5
      `.replace("steps.version == null", "env.X == null"),
      "wf.yml",
    );
    expect(wf.name).toBe("release");
    expect(wf.runName).toBe("Release by ${{ github.actor }}");
    expect(wf.env).toEqual({ GLOBAL: "1.10", FLAG: "true", EMPTY: "" });
    const [build, deploy] = wf.jobs;
    expect(build).toMatchObject({
      runsOn: ["airlock", "large"],
      outputs: { version: "${{ steps.version.outputs.v }}" },
      steps: [{ id: "version", shell: "bash", workingDirectory: "app" }],
    });
    expect(deploy).toMatchObject({
      id: "deploy",
      name: "Deploy ${{ needs.build.outputs.version }}",
      needs: ["build"],
      if: "github.ref == 'refs/heads/main'",
      environment: { name: "production", url: "https://example.com/${{ steps.up.outputs.path }}" },
      timeoutMinutes: 15,
      continueOnError: true,
      env: { TOKEN: "${{ secrets.DEPLOY_TOKEN }}" },
      egress: { mode: "enforce", allow: ["registry.npmjs.org:443", "*.github.com"] },
      secrets: ["DEPLOY_TOKEN"],
      privileged: false,
      hostMounts: [],
    });
    expect(deploy?.steps[0]).toMatchObject({
      uses: { action: "actions/checkout", ref: "8e5e7e5ab8b370d6c329ec480221332ada57f0ab" },
      with: { "fetch-depth": "0" },
    });
    expect(deploy?.steps[0]?.shell).toBeUndefined();
    expect(deploy?.steps[1]).toMatchObject({
      index: 1,
      id: "up",
      name: "Upload ${{ env.GLOBAL }}",
      if: "${{ success() && env.X == null }}",
      run: "./deploy.sh",
      shell: "python",
      workingDirectory: "deploy",
      env: { LEVEL: "3" },
      continueOnError: true,
      timeoutMinutes: 2.5,
    });
  });

  it("keeps if: booleans as text and accepts a string environment", () => {
    const wf = parseWorkflow(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    if: false\n    environment: staging"),
      "wf.yml",
    );
    expect(wf.jobs[0]).toMatchObject({ if: "false", environment: { name: "staging" } });
  });

  it("maps privilege requests to fields policy can refuse", () => {
    const wf = parseWorkflow(
      yaml`
        on: push
        jobs:
          a:
            runs-on: x
            privileged: true
            mounts: [/var/run/docker.sock]
            steps: [run: a]
          b:
            runs-on: x
            container:
              options: --privileged
              volumes: [/etc:/host-etc:ro, /tmp/cache:/cache]
            steps: [run: b]
          c: { runs-on: x, egress: audit, steps: [run: c] }
      `,
      "wf.yml",
    );
    expect(wf.jobs[0]).toMatchObject({ privileged: true, hostMounts: ["/var/run/docker.sock"] });
    expect(wf.jobs[1]).toMatchObject({ privileged: true, hostMounts: ["/etc", "/tmp/cache"] });
    expect(wf.jobs[2]).toMatchObject({
      privileged: false,
      hostMounts: [],
      egress: { mode: "audit", allow: [] },
    });
  });

  it("resolves YAML anchors and aliases", () => {
    const wf = parseWorkflow(
      yaml`
        on: push
        jobs:
          a:
            runs-on: &pool airlock
            steps:
              - &checkout { uses: actions/checkout@v4 }
          b:
            runs-on: *pool
            steps: [*checkout, run: b]
      `,
      "wf.yml",
    );
    expect(wf.jobs[1]?.runsOn).toEqual(["airlock"]);
    expect(wf.jobs[1]?.steps[0]?.uses).toEqual({ action: "actions/checkout", ref: "v4" });
  });
});

describe("parseWorkflow: refusals name the problem and its file:line:col", () => {
  it("reports YAML syntax errors", () => {
    const e = failure("on: push\njobs:\n  test: [unclosed\n");
    expect(e.position?.file).toBe("wf.yml");
    expect(e.message).toMatch(/^wf\.yml:\d+:\d+: YAML: /);
  });

  it("reports duplicate keys as YAML errors", () => {
    expectOnly("on: push\non: pull_request\njobs: {}\n", 2, 1, "YAML: Map keys must be unique");
  });

  it("refuses an empty file and non-mapping roots", () => {
    expectOnly("", 1, 1, "workflow is empty");
    expectOnly("- a\n- b\n", 1, 1, "the workflow must be a mapping");
  });

  it("names unknown top-level keys with a suggestion", () => {
    const p = expectOnly(minimal.replace("jobs:", "job:"), 2, 1, 'unknown key "job" in the workflow');
    expect(p.hint).toBe('did you mean "jobs"?');
    expect(problems(minimal.replace("on: push", "on: push\nconcurrency: ci"))[0]).toMatchObject({
      line: 2,
      message: expect.stringContaining('"concurrency" is not supported'),
    });
  });

  it("names a misspelt job key without also claiming it is missing", () => {
    const p = expectOnly(minimal.replace("runs-on:", "run-on:"), 4, 5, 'unknown key "run-on" in job "test"');
    expect(p.hint).toBe('did you mean "runs-on"?');
    expect(expectOnly(minimal.replace("steps:", "step:"), 5, 5, 'unknown key "step"').hint).toBe(
      'did you mean "steps"?',
    );
    expect(
      expectOnly(minimal.replace("steps:", "timeout: 5\n    steps:"), 5, 5, 'unknown key "timeout"').hint,
    ).toBe('did you mean "timeout-minutes"?');
  });

  it("names a misspelt step key", () => {
    const p = expectOnly(
      minimal.replace("- run:", "- rnu:"),
      6,
      9,
      'unknown key "rnu" in step 1 of job "test"',
    );
    expect(p.hint).toBe('did you mean "run"?');
  });

  it("refuses GitHub job features Airlock does not run", () => {
    const p = expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    strategy: { matrix: { os: [a, b] } }"),
      5,
      5,
      '"strategy" is not supported',
    );
    expect(p.hint).toContain("matrix");
  });

  it("requires runs-on and steps", () => {
    expectOnly(minimal.replace("    runs-on: airlock\n", ""), 3, 3, 'job "test" is missing "runs-on"');
    expectOnly("on: push\njobs:\n  test:\n    runs-on: x\n", 3, 3, 'job "test" is missing "steps"');
    expectOnly(
      minimal.replace("      - run: echo hi\n", "").replace("steps:", "steps: []"),
      5,
      12,
      "steps is empty",
    );
  });

  it("refuses bad job ids", () => {
    expectOnly(minimal.replace("  test:", "  1st:"), 3, 3, 'job id "1st" is invalid');
    expectOnly(minimal.replace("  test:", "  'my job':"), 3, 3, 'job id "my job" is invalid');
  });

  it("refuses wrong types", () => {
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: [a, { b: 1 }]"),
      4,
      18,
      "runs-on[1] must be a string",
    );
    expectOnly(minimal.replace("- run: echo hi", "- run: [a]"), 6, 14, "steps[0].run must be a string");
    expectOnly(
      minimal.replace("steps:", "timeout-minutes: -5\n    steps:"),
      5,
      22,
      "must be a positive number",
    );
    expectOnly(
      minimal.replace("steps:", "continue-on-error: maybe\n    steps:"),
      5,
      24,
      "must be true or false",
    );
    expectOnly(minimal.replace("- run: echo hi", "- run:"), 6, 9, "steps[0].run must not be empty");
    expectOnly(minimal.replace("jobs:", "env: [A]\njobs:"), 2, 6, "env must be a mapping");
    expectOnly(minimal.replace("jobs:", "env: { 'A-B': x }\njobs:"), 2, 8, 'env name "A-B" is invalid');
  });

  it("refuses duplicate step ids, pointing at the second and naming the first", () => {
    const src = minimal.replace("- run: echo hi", "- { id: build, run: a }\n      - { id: build, run: b }");
    expectOnly(src, 7, 15, 'step id "build" is already used in job "test" at 6:15');
  });

  it("refuses needs naming an unknown job, with a suggestion", () => {
    const src = `${minimal}  deploy:\n    needs: [test, tset]\n    runs-on: x\n    steps: [run: d]\n`;
    const p = expectOnly(src, 8, 19, 'jobs.deploy.needs names unknown job "tset"');
    expect(p.hint).toBe('did you mean "test"?');
  });

  it("names needs cycles", () => {
    const src = yaml`
      on: push
      jobs:
        a: { runs-on: x, needs: c, steps: [run: a] }
        b: { runs-on: x, needs: a, steps: [run: b] }
        c: { runs-on: x, needs: [b], steps: [run: c] }
        d: { runs-on: x, needs: d, steps: [run: d] }
    `;
    const ps = problems(src);
    expect(ps).toEqual([
      expect.objectContaining({ line: 3, col: 27, message: "needs cycle: a → c → b → a" }),
      expect.objectContaining({ line: 6, col: 27, message: 'job "d" needs itself' }),
    ]);
  });

  it("refuses actions other than the built-in three", () => {
    const uses = (u: string) => minimal.replace("- run: echo hi", `- uses: ${u}`);
    const p = expectOnly(
      uses("actions/setup-node@v4"),
      6,
      15,
      'uses "actions/setup-node@v4", which is not a built-in',
    );
    expect(p.hint).toContain("actions/checkout, actions/upload-artifact, actions/download-artifact");
    expectOnly(uses("./local-action"), 6, 15, "local and docker actions are not supported");
    expectOnly(uses("docker://alpine:3"), 6, 15, "local and docker actions are not supported");
    expectOnly(uses("actions/checkout"), 6, 15, "without a version");
    expect(expectOnly(uses("actions/chekout@v4"), 6, 15, "not a built-in").hint).toContain(
      'did you mean "actions/checkout"?',
    );
  });

  it("checks the inputs of built-in actions", () => {
    const src = minimal.replace(
      "- run: echo hi",
      "- uses: actions/upload-artifact@v4\n        with: { nmae: dist }",
    );
    const ps = problems(src);
    expect(ps).toEqual([
      expect.objectContaining({ line: 7, col: 9, message: "actions/upload-artifact needs with.path" }),
      expect.objectContaining({
        line: 7,
        col: 17,
        message: 'actions/upload-artifact has no input "nmae"',
        hint: 'did you mean "name"?',
      }),
    ]);
  });

  it("refuses steps with both or neither of run and uses, and misplaced keys", () => {
    expectOnly(
      minimal.replace("- run: echo hi", "- { run: a, uses: actions/checkout@v4 }"),
      6,
      19,
      "both run: and uses:",
    );
    expectOnly(minimal.replace("- run: echo hi", "- name: nothing"), 6, 9, "neither run: nor uses:");
    expectOnly(
      minimal.replace("- run: echo hi", "- { run: a, with: { x: 1 } }"),
      6,
      19,
      "with: is only for uses: steps",
    );
    expectOnly(
      minimal.replace("- run: echo hi", "- { uses: actions/checkout@v4, shell: bash }"),
      6,
      38,
      "shell: is only for run: steps",
    );
    expectOnly(minimal.replace("- run: echo hi", "- { run: a, shell: fish }"), 6, 26, 'unknown shell "fish"');
  });

  it("points at the exact column of a bad expression in a plain scalar", () => {
    const p = expectOnly(
      minimal.replace("echo hi", "echo ${{ github.ref == }} done"),
      6,
      37,
      "invalid expression in jobs.test.steps[0].run: unexpected end of expression",
    );
    expect(p.col).toBe("      - run: echo ${{ github.ref == ".length + 1);
  });

  it("points into block scalars and quoted strings", () => {
    const block = minimal.replace(
      "- run: echo hi",
      "- run: |\n          echo one\n          echo ${{ githb.sha }}",
    );
    const p = expectOnly(block, 8, 20, "unknown context 'githb'");
    expect(p.hint).toBe('did you mean "github"?');
    const quoted = minimal.replace("- run: echo hi", `- run: "echo \${{ env.A = 1 }}"`);
    expectOnly(quoted, 6, 30, "'=' is not an operator");
  });

  it("checks expressions in env, with, name, and if written without braces", () => {
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    env: { A: '${{ nope() }}' }"),
      5,
      20,
      "unknown function",
    );
    expectOnly(
      minimal.replace(
        "- run: echo hi",
        "- uses: actions/checkout@v4\n        with: { ref: '${{ github.ref && }}' }",
      ),
      7,
      41,
      "unexpected end of expression",
    );
    expectOnly(
      minimal.replace("- run: echo hi", "- { name: '${{ 1 2 }}', run: a }"),
      6,
      24,
      "unexpected '2'",
    );
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    if: github.ref === 'x'"),
      5,
      22,
      "'=' is not an operator",
    );
  });

  it("refuses if: conditions that mix text with ${{ }}", () => {
    expectOnly(
      minimal.replace("- run: echo hi", "- { if: '${{ false }} && true', run: a }"),
      6,
      16,
      "always true",
    );
  });

  it("requires secrets to be requested and named literally", () => {
    const withSecret = (expr: string, jobExtra = "") =>
      minimal
        .replace("runs-on: airlock", `runs-on: airlock${jobExtra}`)
        .replace("echo hi", `echo \${{ ${expr} }}`);
    const p = expectOnly(withSecret("secrets.NPM_TOKEN"), 6, 23, 'secret "NPM_TOKEN" is used');
    expect(p.hint).toContain("secrets:");
    expect(() =>
      parseWorkflow(withSecret("secrets.npm_token", "\n    secrets: [NPM_TOKEN]"), "wf.yml"),
    ).not.toThrow();
    expectOnly(
      withSecret("secrets[env.WHICH]", "\n    secrets: [A]"),
      7,
      23,
      "secrets must be named literally",
    );
    expectOnly(withSecret("toJSON(secrets)", "\n    secrets: [A]"), 7, 30, "secrets must be named literally");
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    secrets: [A, a]"),
      5,
      18,
      'secret "a" is listed twice',
    );
  });

  it("enforces where each context is available", () => {
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    secrets: [A]\n    if: secrets.A != ''"),
      6,
      9,
      "context 'secrets' is not available in jobs.test.if",
    );
    const wfEnv = expectOnly(
      minimal.replace("jobs:", "env: { T: '${{ secrets.T }}' }\njobs:"),
      2,
      16,
      "'secrets' is not available in env",
    );
    expect(wfEnv.hint).toContain("job-scoped");
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    if: steps.x.outcome == 'success'"),
      5,
      9,
      "context 'steps' is not available in jobs.test.if",
    );
  });

  it("checks steps.<id> and needs.<id> references", () => {
    const src = minimal.replace(
      "- run: echo hi",
      "- run: echo ${{ steps.later.outputs.x }}\n      - { id: later, run: b }\n      - run: echo ${{ steps.latr.outcome }} ${{ needs.other.result }}",
    );
    const ps = problems(src);
    expect(ps.map((p) => [p.line, p.col, p.message])).toEqual([
      [6, 23, "steps.later in jobs.test.steps[0].run names no earlier step with that id"],
      [8, 23, "steps.latr in jobs.test.steps[2].run names no earlier step with that id"],
      [8, 49, "needs.other in jobs.test.steps[2].run is not one of this job's needs"],
    ]);
    expect(ps[1]?.hint).toBe('did you mean "later"?');
  });

  it("allows status functions only in if:", () => {
    expectOnly(
      minimal.replace("echo hi", "echo ${{ failure() }}"),
      6,
      23,
      "failure() can only be used in if:",
    );
  });

  it("requires literal runs-on and environment names, because admission decides on them", () => {
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: ${{ inputs.pool }}"),
      4,
      14,
      "cannot use expressions",
    );
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    environment: ${{ inputs.env }}"),
      5,
      18,
      "jobs.test.environment cannot use expressions",
    );
  });

  it("validates egress", () => {
    const egress = (v: string) => minimal.replace("runs-on: airlock", `runs-on: airlock\n    egress: ${v}`);
    expect(expectOnly(egress("enforcee"), 5, 13, '"enforcee" is not a mode').hint).toBe(
      'did you mean "enforce"?',
    );
    expectOnly(egress("{ allow: ['*'] }"), 5, 23, 'allow entry "*" is invalid: a bare * allows everything');
    expectOnly(egress("{ allow: ['a.*.com'] }"), 5, 23, "* is only allowed as a leading *.");
    expectOnly(egress("{ allow: ['x.com:99999'] }"), 5, 23, "port must be 1-65535");
    expectOnly(egress("{ mode: block, allow: [x.com] }"), 5, 28, "mode block but lists hosts");
    expectOnly(egress("{ mod: audit }"), 5, 15, 'unknown key "mod"');
  });

  it("refuses containers except the fields that request privilege", () => {
    const p = expectOnly(
      minimal.replace(
        "runs-on: airlock",
        "runs-on: airlock\n    container: { image: node:20, options: --privileged }",
      ),
      5,
      18,
      "containers are not supported",
    );
    expect(p.hint).toContain("sandbox");
    expectOnly(
      minimal.replace("runs-on: airlock", "runs-on: airlock\n    container: node:20"),
      5,
      16,
      "containers are not supported",
    );
    expectOnly(
      minimal.replace(
        "runs-on: airlock",
        "runs-on: airlock\n    container: { options: --cap-add=SYS_ADMIN }",
      ),
      5,
      27,
      'container option "--cap-add=SYS_ADMIN" is not supported',
    );
  });

  it("validates permissions", () => {
    const perms = (v: string) => minimal.replace("jobs:", `permissions: ${v}\njobs:`);
    expect(expectOnly(perms("{ content: read }"), 2, 16, 'unknown permission scope "content"').hint).toBe(
      'did you mean "contents"?',
    );
    expectOnly(perms("{ contents: admin }"), 2, 26, "permissions.contents must be read, write or none");
    expectOnly(perms("read"), 2, 14, "must be read-all, write-all or a mapping");
  });

  it("validates triggers", () => {
    const on = (v: string) => minimal.replace("on: push", v);
    expect(expectOnly(on("on: [push, pul_request]"), 1, 12, 'unknown event "pul_request"').hint).toBe(
      'did you mean "pull_request"?',
    );
    expectOnly(
      on("on: { push: { branches: [a], branches-ignore: [b] } }"),
      1,
      30,
      "both branches and branches-ignore",
    );
    expectOnly(on("on: { push: { types: [x] } }"), 1, 15, 'unknown key "types" in on.push');
    expectOnly(on("on: { schedule: [{ cron: '* *' }] }"), 1, 26, "must have 5 fields");
    expectOnly(on("on: { workflow_dispatch: { inputs: { x: { type: choice } } } }"), 1, 49, "no options");
    expectOnly(on("on: workflow_call"), 1, 5, "workflow_call is not supported");
    expectOnly("jobs:\n  a: { runs-on: x, steps: [run: a] }\n", 1, 1, 'no "on:" triggers');
  });

  it("collects every problem into one error, sorted, with the first as the position", () => {
    const src = yaml`
      on: pushh
      jobs:
        test:
          runs-on: airlock
          steps:
            - uses: some/action@v1
            - run: echo \${{ matrix.os }}
        Bad Id:
          runs-on: x
          steps: [run: a]
    `;
    const e = failure(src);
    const ps = e.details?.errors as WorkflowProblem[];
    expect(ps.map((p) => `${p.line}:${p.col}`)).toEqual(["1:5", "6:15", "7:23", "8:3"]);
    expect(e.position).toEqual({ file: "wf.yml", line: 1, col: 5 });
    const lines = e.message.split("\n");
    expect(lines[0]).toBe('wf.yml:1:5: unknown event "pushh" in on: (1 of 4 problems)');
    expect(lines.slice(1)).toEqual([
      expect.stringMatching(/^wf\.yml:6:15: .*some\/action@v1/),
      expect.stringMatching(/^wf\.yml:7:23: .*unknown context 'matrix'/),
      expect.stringMatching(/^wf\.yml:8:3: job id "Bad Id" is invalid/),
    ]);
    expect(e.hint).toBe('did you mean "push"?');
  });

  it("refuses oversized files before parsing them", () => {
    expectOnly(`# ${"x".repeat(1024 * 1024)}\n${minimal}`, 1, 1, "larger than");
  });
});

describe("egressPattern", () => {
  it.each([
    ["example.com", "example.com"],
    ["Example.COM:443", "example.com:443"],
    ["*.github.com", "*.github.com"],
    ["10.0.0.1:8080", "10.0.0.1:8080"],
  ])("accepts %s as %s", (input, out) => {
    expect(egressPattern(input)).toBe(out);
  });

  it.each(["*", "a.*.com", "http://x.com", "x.com:0", "-bad.com", "x.com:", "[::1]:443", ""])(
    "refuses %j",
    (input) => {
      expect(egressPattern(input)).toHaveProperty("problem");
    },
  );
});
