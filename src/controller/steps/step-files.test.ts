import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseOutputs, readStepOutputs, runnerDir } from "./step-files.js";

describe("step outputs", () => {
  it("parses name=value and heredoc forms", () => {
    expect(parseOutputs("a=1\nb=x=y\nmulti<<EOF\nline 1\nline 2\nEOF\nc=\n")).toEqual({
      a: "1",
      b: "x=y",
      multi: "line 1\nline 2",
      c: "",
    });
  });

  it("reads the file a step wrote", () => {
    const ws = mkdtempSync(join(tmpdir(), "airlock-ws-"));
    mkdirSync(join(ws, runnerDir));
    writeFileSync(join(ws, runnerDir, "output-2"), "digest=abc\n");
    expect(readStepOutputs(ws, 2)).toEqual({ digest: "abc" });
    expect(readStepOutputs(ws, 3)).toEqual({});
  });

  it("does not follow a symlink the job planted to a host file", () => {
    const ws = mkdtempSync(join(tmpdir(), "airlock-ws-"));
    const secret = join(mkdtempSync(join(tmpdir(), "airlock-host-")), "secret");
    writeFileSync(secret, "token=host-secret\n");
    mkdirSync(join(ws, runnerDir));
    symlinkSync(secret, join(ws, runnerDir, "output-0"));
    expect(readStepOutputs(ws, 0)).toEqual({});
  });

  it("does not follow a symlinked runner directory", () => {
    const ws = mkdtempSync(join(tmpdir(), "airlock-ws-"));
    const hostDir = mkdtempSync(join(tmpdir(), "airlock-host-"));
    writeFileSync(join(hostDir, "output-0"), "token=host-secret\n");
    symlinkSync(hostDir, join(ws, runnerDir));
    expect(readStepOutputs(ws, 0)).toEqual({});
  });
});
