// biome-ignore-all lint/suspicious/noTemplateCurlyInString: ${{ }} is GitHub expression syntax, not a JS template
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { dependants, jobOrder, upstreamStatus } from "./graph.js";
import { type ExpressionContext, evaluateCondition, interpolate } from "./index.js";
import { defaultPermissions, parseWorkflow } from "./parse.js";

const file = ".github/workflows/ci.yml";
const text = readFileSync(new URL("./fixtures/ci.yml", import.meta.url), "utf8");

describe("fixture: a realistic ci workflow", () => {
  const wf = parseWorkflow(text, file);

  it("parses to the expected plan", () => {
    const pos = (line: number, col: number) => ({ file, line, col });
    const step = (index: number, line: number, rest: Record<string, unknown>) => ({
      index,
      env: {},
      with: {},
      continueOnError: false,
      position: pos(line, 9),
      ...rest,
    });
    const job = {
      runsOn: ["airlock"],
      permissions: defaultPermissions(),
      env: {},
      outputs: {},
      timeoutMinutes: 360,
      secrets: [],
      privileged: false,
      hostMounts: [],
    };
    expect(wf).toEqual({
      file,
      name: "ci",
      on: { push: { branches: ["main"] }, pull_request: {} },
      permissions: defaultPermissions(),
      env: {},
      jobs: [
        {
          ...job,
          id: "test",
          needs: [],
          position: pos(4, 3),
          steps: [
            step(0, 7, { uses: { action: "actions/checkout", ref: "v4" } }),
            step(1, 8, { run: "node --test" }),
          ],
        },
        {
          ...job,
          id: "build",
          needs: ["test"],
          position: pos(9, 3),
          steps: [
            step(0, 13, { uses: { action: "actions/checkout", ref: "v4" } }),
            step(1, 14, { run: "mkdir -p dist && echo hi > dist/out.txt" }),
            step(2, 15, {
              uses: { action: "actions/upload-artifact", ref: "v4" },
              with: { name: "dist", path: "dist/" },
            }),
            step(3, 17, { if: "always()", run: "echo done" }),
          ],
        },
      ],
    });
  });

  it("orders jobs and knows who to skip when test fails", () => {
    expect(jobOrder(wf)).toEqual([["test"], ["build"]]);
    expect(dependants(wf, "test")).toEqual(["build"]);
    const status = upstreamStatus(wf, "build", { test: "failure" });
    expect(status).toBe("failure");
    const ctx: ExpressionContext = { contexts: {}, status };
    // build has no if: it is skipped when test failed…
    expect(evaluateCondition(wf.jobs[1]?.if, ctx)).toBe(false);
    // …but its `if: always()` step would still run once a job is under way with a failure.
    expect(evaluateCondition(wf.jobs[1]?.steps[3]?.if, ctx)).toBe(true);
    expect(evaluateCondition(wf.jobs[1]?.steps[1]?.if, ctx)).toBe(false);
  });

  it("interpolates its strings with a run's contexts", () => {
    const ctx: ExpressionContext = { contexts: { github: { sha: "abc123" } } };
    expect(interpolate(wf.jobs[1]?.steps[1]?.run ?? "", ctx)).toBe("mkdir -p dist && echo hi > dist/out.txt");
    expect(interpolate("sha=${{ github.sha }}", ctx)).toBe("sha=abc123");
  });

  it("names the typo when the same workflow is edited badly", () => {
    const broken = text.replace("    runs-on: airlock\n    steps:", "    run-on: airlock\n    steps:");
    expect(() => parseWorkflow(broken, file)).toThrow(`${file}:5:5: unknown key "run-on" in job "test"`);
  });
});
