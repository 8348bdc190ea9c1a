import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { pae } from "./dsse.js";
import { validateStatement } from "./schema.js";
import {
  builderIdFor,
  buildStatement,
  egressByproductName,
  policyByproductName,
  readAirlockProvenance,
  readByproduct,
} from "./statement.js";
import { fixtureInput } from "./test-support.js";

/** Statements as arbitrary JSON, for tests that poke at any path. */
// biome-ignore lint/suspicious/noExplicitAny: mutations reach into arbitrary JSON paths
type Json = any;

const golden = JSON.parse(
  readFileSync(new URL("./fixtures/statement.golden.json", import.meta.url), "utf8"),
) as Record<string, unknown>;

/** A deep copy of the golden statement with one change applied. */
function mutated(change: (s: Json) => void): unknown {
  const copy = structuredClone(golden);
  change(copy);
  return copy;
}

describe("provenance statement", () => {
  it("matches the golden fixture for a fixed job", () => {
    expect(buildStatement(fixtureInput())).toEqual(golden);
  });

  it("does not depend on the order artifacts or destinations arrive in", () => {
    const input = fixtureInput();
    const shuffled = fixtureInput({
      subjects: [...input.subjects].reverse(),
      egress: { ...input.egress, destinations: [...input.egress.destinations].reverse() },
    });
    expect(buildStatement(shuffled)).toEqual(golden);
  });

  it("validates against in-toto Statement v1 and SLSA Provenance v1", () => {
    expect(validateStatement(golden)).toMatchObject({ ok: true });
    const read = readAirlockProvenance(golden);
    expect(read.ok).toBe(true);
    if (!read.ok) return;
    expect(read.value.builderId).toBe("https://airlock.dev/builder/test");
    expect(read.value.internal).toMatchObject({ runnerId: "rnr_cccccccccccccccc", refProtected: true });
    expect(read.value.external.workflow).toMatchObject({
      path: ".github/workflows/release.yml",
      ref: "refs/heads/main",
      repository: "https://git.example.test/acme/web",
    });
  });

  it("carries the egress flow summary and policy decisions as inline JSON byproducts", () => {
    const st = buildStatement(fixtureInput());
    expect(readByproduct(st, egressByproductName)).toMatchObject({
      mode: "enforce",
      denied: 1,
      destinations: [{ host: "evil.example" }, { host: "registry.npmjs.org" }],
    });
    expect(readByproduct(st, policyByproductName)).toEqual(fixtureInput().policyDecisions);
  });

  it.each([
    ["wrong _type", (s: Json) => (s._type = "https://in-toto.io/Statement/v0.1"), "_type"],
    ["no subject", (s: Json) => (s.subject = []), "subject"],
    ["subject without digest", (s: Json) => delete s.subject[0].digest, "subject.0.digest"],
    [
      "upper-case hex digest",
      (s: Json) => (s.subject[0].digest.sha256 = "AB".repeat(32)),
      "subject.0.digest.sha256",
    ],
    ["short sha256", (s: Json) => (s.subject[0].digest.sha256 = "abcd"), "subject.0.digest.sha256"],
    ["empty digest set", (s: Json) => (s.subject[0].digest = {}), "subject.0.digest"],
    ["predicateType not a URI", (s: Json) => (s.predicateType = "slsa provenance"), "predicateType"],
    ["no predicate", (s: Json) => delete s.predicate, "predicate"],
    [
      "no buildType",
      (s: Json) => delete s.predicate.buildDefinition.buildType,
      "predicate.buildDefinition.buildType",
    ],
    [
      "no externalParameters",
      (s: Json) => delete s.predicate.buildDefinition.externalParameters,
      "predicate.buildDefinition.externalParameters",
    ],
    [
      "no builder id",
      (s: Json) => delete s.predicate.runDetails.builder.id,
      "predicate.runDetails.builder.id",
    ],
    [
      "timestamp with an offset",
      (s: Json) => (s.predicate.runDetails.metadata.startedOn = "2026-11-25T09:00:00+01:00"),
      "predicate.runDetails.metadata.startedOn",
    ],
    [
      "timestamp not RFC 3339",
      (s: Json) => (s.predicate.runDetails.metadata.finishedOn = "25/11/2026"),
      "predicate.runDetails.metadata.finishedOn",
    ],
    [
      "resource descriptor with none of uri, digest, content",
      (s: Json) => (s.predicate.runDetails.byproducts[0] = { name: "egress-flows" }),
      "predicate.runDetails.byproducts.0",
    ],
    [
      "content not base64",
      (s: Json) => (s.predicate.runDetails.byproducts[0].content = "not base64!"),
      "predicate.runDetails.byproducts.0.content",
    ],
    [
      "builder version not a string map",
      (s: Json) => (s.predicate.runDetails.builder.version = { airlock: 1 }),
      "predicate.runDetails.builder.version.airlock",
    ],
  ])("rejects a statement with %s", (_name, change, path) => {
    const v = validateStatement(mutated(change));
    expect(v.ok).toBe(false);
    if (v.ok) return;
    expect(v.errors.join("\n")).toContain(path);
  });

  it("ignores unknown fields, as the in-toto parsing rules require", () => {
    expect(validateStatement(mutated((s) => (s.predicate.extra = { x: 1 }))).ok).toBe(true);
  });

  it("reads only Airlock's build type, and names the missing Airlock parameter", () => {
    const other = readAirlockProvenance(
      mutated((s) => (s.predicate.buildDefinition.buildType = "https://x.test/t")),
    );
    expect(other).toMatchObject({ ok: false, errors: [expect.stringContaining("buildType")] });
    const noRunner = readAirlockProvenance(
      mutated((s) => delete s.predicate.buildDefinition.internalParameters.runnerId),
    );
    expect(noRunner).toMatchObject({
      ok: false,
      errors: [expect.stringContaining("internalParameters.runnerId")],
    });
  });

  it("refuses inputs it cannot describe", () => {
    expect(() => buildStatement(fixtureInput({ subjects: [] }))).toThrow(/at least one artifact/);
    const input = fixtureInput();
    const first = input.subjects[0] as (typeof input.subjects)[number];
    expect(() => buildStatement(fixtureInput({ subjects: [first, first] }))).toThrow(/two artifacts/);
    expect(() => buildStatement(fixtureInput({ subjects: [{ name: "a", digest: "sha256:xyz" }] }))).toThrow(
      /not sha256/,
    );
    expect(() => buildStatement(fixtureInput({ startedOn: "yesterday" }))).toThrow();
  });

  it("builds builder ids from an instance name", () => {
    expect(builderIdFor("ci-1")).toBe("https://airlock.dev/builder/ci-1");
    expect(() => builderIdFor("a/b")).toThrow(/instance/);
  });
});

describe("DSSE pre-authentication encoding", () => {
  it("matches the DSSE v1 test vector", () => {
    expect(pae("http://example.com/HelloWorld", Buffer.from("hello world")).toString()).toBe(
      "DSSEv1 29 http://example.com/HelloWorld 11 hello world",
    );
  });
  it("counts bytes, not characters", () => {
    expect(pae("t", Buffer.from("é")).toString("latin1")).toBe(
      `DSSEv1 1 t 2 ${Buffer.from("é").toString("latin1")}`,
    );
  });
});
