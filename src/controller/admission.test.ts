import { describe, expect, it } from "vitest";
import { effectiveEgress } from "./admission.js";

describe("effective egress", () => {
  const none = { egressAllow: [] };
  const defaults = { egressAllow: ["registry.npmjs.org", "*.internal.example:5432"] };

  it("is closed when neither the job nor the repository allows anything", () => {
    expect(effectiveEgress({}, none)).toEqual({ mode: "block", allow: [] });
  });

  it("gives a silent job the repository's defaults, enforced", () => {
    expect(effectiveEgress({}, defaults)).toEqual({ mode: "enforce", allow: defaults.egressAllow });
  });

  it("merges the job's own entries first, without duplicates", () => {
    expect(
      effectiveEgress({ egress: { mode: "audit", allow: ["github.com", "registry.npmjs.org"] } }, defaults),
    ).toEqual({ mode: "audit", allow: ["github.com", "registry.npmjs.org", "*.internal.example:5432"] });
  });

  it("lets a job block itself even where the repository allows more", () => {
    expect(effectiveEgress({ egress: { mode: "block", allow: [] } }, defaults)).toEqual({
      mode: "block",
      allow: [],
    });
  });
});
