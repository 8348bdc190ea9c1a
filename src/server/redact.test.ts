import { describe, expect, it } from "vitest";
import { redacted, scrubbedPath, scrubUrl } from "./redact.js";

const token = `alk_${"Ab3_-".repeat(8)}xyz`;
const jwt = "eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJyZXBvOmFjbWUifQ.c2lnbmF0dXJlLXZhbHVl";

describe("scrubUrl", () => {
  it.each([
    [`/api/v1/runs?access_token=${token}`, `/api/v1/runs?access_token=${redacted}`],
    [`/api/v1/runs?token=short`, `/api/v1/runs?token=${redacted}`],
    [`/api/v1/runs?x=${token}&repo=acme/web`, `/api/v1/runs?x=${redacted}&repo=acme/web`],
    [`/api/v1/${token}`, `/api/v1/${redacted}`],
    [`/api/v1/runs?id_token=${jwt}`, `/api/v1/runs?id_token=${redacted}`],
    [`/api/v1/runs?q=${jwt}`, `/api/v1/runs?q=${redacted}`],
    [`/api/v1/runs?h=${"ab".repeat(32)}`, `/api/v1/runs?h=${redacted}`],
    [`/api/v1/runs?${token}`, `/api/v1/runs?${redacted}`],
    ["/api/v1/runs?repo=acme/web&limit=5", "/api/v1/runs?repo=acme/web&limit=5"],
    ["/api/v1/runs?Authorization%3D=x", `/api/v1/runs?Authorization%3D=${redacted}`],
    ["/api/v1/runs?%E0%A4%A=1", "/api/v1/runs?%E0%A4%A=1"],
  ])("%s", (url, expected) => {
    expect(scrubUrl(url)).toBe(expected);
  });

  it("keeps digests in paths, where they name artifacts", () => {
    const digest = `sha256:${"a".repeat(64)}`;
    expect(scrubUrl(`/api/v1/artifacts/${digest}`)).toBe(`/api/v1/artifacts/${digest}`);
  });
});

describe("scrubbedPath", () => {
  it("drops the query and the scheme and host of an absolute-form target, and bounds the length", () => {
    expect(scrubbedPath(`/api/v1/runs?token=${token}`)).toBe("/api/v1/runs");
    expect(scrubbedPath(`http://evil.example/api/v1/${token}`)).toBe(`/api/v1/${redacted}`);
    expect(scrubbedPath(`/api/v1/jobs/${"a".repeat(5000)}`).length).toBeLessThanOrEqual(513);
  });
});
