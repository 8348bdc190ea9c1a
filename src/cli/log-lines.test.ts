import { describe, expect, it } from "vitest";
import { LineAssembler } from "./log-lines.js";

const chunk = (stream: "stdout" | "stderr", data: string, stepIdx = 0) => ({
  seq: 0,
  jobId: "job_x",
  stepIdx,
  stream,
  data,
  at: "",
});

describe("log line assembly", () => {
  it("keeps lines whole when stdout and stderr chunks interleave mid-line", () => {
    const a = new LineAssembler();
    const out = [
      ...a.push(chunk("stdout", "TRY one exit=7\nTRY-DIR")),
      ...a.push(chunk("stderr", "curl: (7) failed\n")),
      ...a.push(chunk("stdout", "ECT two exit=7\n")),
      ...a.push(chunk("stdout", "no newline")),
    ];
    expect(out).toEqual([
      { stream: "stdout", text: "TRY one exit=7" },
      { stream: "stderr", text: "curl: (7) failed" },
      { stream: "stdout", text: "TRY-DIRECT two exit=7" },
    ]);
    expect(a.rest()).toEqual([{ stream: "stdout", text: "no newline" }]);
  });
});
