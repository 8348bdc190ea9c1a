import { describe, expect, it } from "vitest";
import { assertSpec } from "./validate.js";

const ok = {
  jobId: "job_abc",
  workspaceDir: "/x",
  uid: 200_000,
  limits: { memoryBytes: 64 << 20, pids: 64, cpuWeight: 100 },
};

describe("assertSpec", () => {
  it("accepts a normal spec", () => {
    expect(() => assertSpec(ok)).not.toThrow();
  });
  it.each([
    ["a path-like job id", { jobId: "../x" }],
    ["a job id with spaces", { jobId: "job abc" }],
    ["root", { uid: 0 }],
    ["a system uid", { uid: 999 }],
    ["a tiny memory limit", { limits: { ...ok.limits, memoryBytes: 1024 } }],
    ["too few pids for bwrap", { limits: { ...ok.limits, pids: 2 } }],
    ["an out-of-range cpu weight", { limits: { ...ok.limits, cpuWeight: 0 } }],
  ])("rejects %s", (_, over) => {
    expect(() => assertSpec({ ...ok, ...over })).toThrow(expect.objectContaining({ code: "SANDBOX_FAILED" }));
  });
});
