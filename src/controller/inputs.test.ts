import { describe, expect, it } from "vitest";
import { parseWorkflow } from "../workflow/index.js";
import { resolveInputs } from "./inputs.js";

const wf = parseWorkflow(
  `on:
  push:
  workflow_dispatch:
    inputs:
      target: { type: choice, options: [staging, prod], default: staging }
      dry-run: { type: boolean, default: true }
      count: { type: number }
      note: { required: true }
jobs:
  a:
    runs-on: airlock
    steps:
      - run: echo
`,
  "wf.yml",
);

describe("workflow_dispatch inputs at intake", () => {
  it("fills in defaults and keeps declared names", () => {
    expect(resolveInputs(wf, "workflow_dispatch", { NOTE: "hi" })).toEqual({
      note: "hi",
      target: "staging",
      "dry-run": "true",
    });
  });

  it.each([
    [{ note: "x", nope: "1" }, /declares no input "nope"/],
    [{}, /input "note" is required/],
    [{ note: "x", target: "prod; rm -rf /" }, /input "target" must be one of staging, prod/],
    [{ note: "x", "dry-run": "yes" }, /must be true or false/],
    [{ note: "x", count: "1e3x" }, /must be a number/],
    [{ note: "x\0y" }, /NUL/],
    [{ note: "x", Note: "y" }, /given twice/],
    [{ note: "a".repeat(70_000) }, /longer than/],
  ])("refuses %j", (given, message) => {
    expect(() => resolveInputs(wf, "workflow_dispatch", given)).toThrow(message);
  });

  it("refuses inputs on other events instead of passing them on", () => {
    expect(() => resolveInputs(wf, "push", { note: "x" })).toThrow(/only for workflow_dispatch/);
    expect(resolveInputs(wf, "push", {})).toEqual({});
  });

  it("quotes a name with a newline in the error, so it stays one line", () => {
    try {
      resolveInputs(wf, "workflow_dispatch", { "a\nerror: forged": "x", note: "y" });
      expect.unreachable();
    } catch (e) {
      expect(String((e as Error).message)).not.toContain("\n");
    }
  });
});
