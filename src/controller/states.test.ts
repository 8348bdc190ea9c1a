import { describe, expect, it } from "vitest";
import { assertJobTransition, assertRunTransition, jobTransitions } from "./states.js";

describe("job state machine", () => {
  it("allows the documented path and nothing that skips a stage", () => {
    const path = ["queued", "admitted", "provisioning", "running", "succeeded", "torn_down"] as const;
    for (let i = 1; i < path.length; i++)
      expect(() => assertJobTransition(path[i - 1], path[i] as never, "job_x")).not.toThrow();
    expect(() => assertJobTransition("queued", "running", "job_x")).toThrow(
      /cannot go from queued to running/,
    );
    expect(() => assertJobTransition("admitted", "succeeded", "job_x")).toThrow();
    expect(() => assertJobTransition("torn_down", "running", "job_x")).toThrow();
  });

  it("makes denied and skipped final", () => {
    expect(jobTransitions.denied).toEqual([]);
    expect(jobTransitions.skipped).toEqual([]);
  });

  it("ends every finished state in torn_down", () => {
    for (const s of ["succeeded", "failed", "cancelled", "timed_out"] as const) {
      expect(() => assertJobTransition(s, "torn_down", "job_x")).not.toThrow();
    }
  });

  it("rejects a state it has never heard of", () => {
    expect(() => assertJobTransition("exploded", "torn_down", "job_x")).toThrow(/cannot go from exploded/);
  });
});

describe("run state machine", () => {
  it("finishes once and only once", () => {
    expect(() => assertRunTransition("queued", "running", "run_x")).not.toThrow();
    expect(() => assertRunTransition("running", "failed", "run_x")).not.toThrow();
    expect(() => assertRunTransition("failed", "running", "run_x")).toThrow();
    expect(() => assertRunTransition("succeeded", "failed", "run_x")).toThrow();
  });
});
