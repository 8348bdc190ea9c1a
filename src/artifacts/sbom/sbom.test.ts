import { mkdir, mkdtemp, readFile, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AirlockError } from "../../errors.js";
import {
  findLockfiles,
  integrityHashes,
  npmPurl,
  readLockfile,
  sbomFromPackageLock,
  validateSbom,
} from "./index.js";

const here = dirname(fileURLToPath(import.meta.url));
const fixture = async () =>
  JSON.parse(await readFile(join(here, "fixtures/package-lock.json"), "utf8")) as unknown;

const fixed = {
  clock: { now: () => new Date("2025-01-02T03:04:05.000Z") },
  uuid: () => "0b6e5f1c-2d3a-4c5b-8e9f-0a1b2c3d4e5f",
  tool: { name: "airlock", version: "9.9.9" },
};

type Doc = {
  bomFormat: string;
  specVersion: string;
  serialNumber: string;
  metadata: {
    timestamp: string;
    tools: { components: { name: string; version: string }[] };
    component: Comp;
  };
  components: Comp[];
  dependencies: { ref: string; dependsOn?: string[] }[];
};
type Comp = {
  name: string;
  group?: string;
  version?: string;
  purl?: string;
  "bom-ref"?: string;
  scope?: string;
  hashes?: { alg: string; content: string }[];
  properties?: { name: string; value: string }[];
};

const b64hex = (b64: string) => Buffer.from(b64, "base64").toString("hex");

describe("SBOM from package-lock.json (v3)", () => {
  it("lists every installed package with purl, version and hashes", async () => {
    const lock = await fixture();
    const sbom = sbomFromPackageLock(lock, { name: "acme-web", version: "1.2.0" }, fixed);
    const doc = sbom.document as unknown as Doc;
    expect(doc.bomFormat).toBe("CycloneDX");
    expect(doc.specVersion).toBe("1.6");
    expect(doc.serialNumber).toBe("urn:uuid:0b6e5f1c-2d3a-4c5b-8e9f-0a1b2c3d4e5f");
    expect(doc.metadata.timestamp).toBe("2025-01-02T03:04:05.000Z");
    expect(doc.metadata.tools.components).toEqual([
      { type: "application", name: "airlock", version: "9.9.9" },
    ]);
    expect(doc.metadata.component).toMatchObject({
      name: "acme-web",
      version: "1.2.0",
      purl: "pkg:npm/acme-web@1.2.0",
    });

    expect(doc.components.map((c) => c.purl).sort()).toEqual([
      "pkg:npm/%40acme/util@0.1.0",
      "pkg:npm/%40types/ms@0.7.34",
      "pkg:npm/debug@2.6.9",
      "pkg:npm/debug@4.3.4",
      "pkg:npm/ms@2.0.0",
      "pkg:npm/ms@2.1.2",
      "pkg:npm/ms@2.1.3",
      "pkg:npm/send@0.18.0",
    ]);
    expect(sbom.components).toBe(8);
    expect(sbom.unresolved).toEqual([]);

    const byPurl = new Map(doc.components.map((c) => [c.purl, c]));
    const ms = byPurl.get("pkg:npm/ms@2.1.3") as Comp;
    expect(ms).toMatchObject({
      name: "ms",
      version: "2.1.3",
      "bom-ref": "pkg:npm/ms@2.1.3",
      scope: "required",
    });
    expect(ms.hashes).toEqual([
      {
        alg: "SHA-512",
        content: b64hex(
          "6FlzubTLZG3J2a/NVCAleEhjzq5oxgHyaCU9yYXvcLsvoVaHJq/s5xXI6/XXP6tz7R9xAOtHnSO/tXtF3WRTlA==",
        ),
      },
    ]);
    expect(ms.hashes?.[0]?.content).toMatch(/^[0-9a-f]{128}$/);
    const types = byPurl.get("pkg:npm/%40types/ms@0.7.34") as Comp;
    expect(types).toMatchObject({ group: "@types", name: "ms", scope: "optional" });
    expect(types.properties).toEqual([{ name: "cdx:npm:package:development", value: "true" }]);
    expect(byPurl.get("pkg:npm/%40acme/util@0.1.0")?.properties).toEqual([
      { name: "cdx:npm:package:path", value: "packages/util" },
    ]);
  });

  it("resolves the dependency graph the way Node resolves require", async () => {
    const doc = sbomFromPackageLock(await fixture(), {}, fixed).document as unknown as Doc;
    const graph = Object.fromEntries(doc.dependencies.map((d) => [d.ref, (d.dependsOn ?? []).sort()]));
    expect(graph).toEqual({
      "pkg:npm/acme-web@1.2.0": [
        "pkg:npm/%40acme/util@0.1.0",
        "pkg:npm/%40types/ms@0.7.34",
        "pkg:npm/debug@4.3.4",
        "pkg:npm/send@0.18.0",
      ],
      "pkg:npm/%40acme/util@0.1.0": ["pkg:npm/ms@2.1.2"],
      "pkg:npm/%40types/ms@0.7.34": [],
      "pkg:npm/debug@4.3.4": ["pkg:npm/ms@2.1.2"],
      "pkg:npm/send@0.18.0": ["pkg:npm/debug@2.6.9", "pkg:npm/ms@2.1.3"],
      "pkg:npm/debug@2.6.9": ["pkg:npm/ms@2.0.0"],
      "pkg:npm/ms@2.0.0": [],
      "pkg:npm/ms@2.1.2": [],
      "pkg:npm/ms@2.1.3": [],
    });
  });

  it("validates against the CycloneDX 1.6 schema", async () => {
    const sbom = sbomFromPackageLock(await fixture(), { name: "acme-web", version: "1.2.0" });
    const v = await validateSbom(sbom.json);
    expect(v).toEqual({ valid: true, by: "schema", errors: [] });
    expect(sbom.predicateType).toBe("https://cyclonedx.org/bom");
    expect(sbom.mediaType).toBe("application/vnd.cyclonedx+json");
    expect(
      (await validateSbom(sbom.json.replace('"bomFormat": "CycloneDX"', '"bomFormat": "SPDX"'))).valid,
    ).toBe(false);
  });

  it("is stable given the same clock and uuid", async () => {
    const lock = await fixture();
    expect(sbomFromPackageLock(lock, {}, fixed).json).toBe(sbomFromPackageLock(lock, {}, fixed).json);
  });

  it("leaves dev packages out on request", async () => {
    const sbom = sbomFromPackageLock(await fixture(), {}, { ...fixed, includeDev: false });
    const doc = sbom.document as unknown as Doc;
    expect(doc.components.some((c) => c.group === "@types")).toBe(false);
    expect(sbom.unresolved).toEqual([]);
  });

  it("reports declared dependencies with no installed package", () => {
    const sbom = sbomFromPackageLock({
      lockfileVersion: 3,
      packages: {
        "": { name: "x", version: "1.0.0", dependencies: { gone: "^1" }, peerDependencies: { p: "*" } },
      },
    });
    expect(sbom.unresolved).toEqual(["<root> → gone"]);
    expect(sbom.components).toBe(0);
  });

  it("refuses lockfile v1 and non-lockfiles without echoing content", () => {
    expect(() => sbomFromPackageLock({ lockfileVersion: 1, dependencies: {} })).toThrow(
      /version 1 has no "packages"/,
    );
    let err: unknown;
    try {
      sbomFromPackageLock({ lockfileVersion: "hunter2-secret" });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(AirlockError);
    expect(
      JSON.stringify({ m: (err as AirlockError).message, d: (err as AirlockError).details }),
    ).not.toContain("hunter2");
  });

  it("maps integrity and purls", () => {
    expect(integrityHashes("sha1-AAAA sha512-AQID bogus")).toEqual([
      ["SHA-1", "000000"],
      ["SHA-512", "010203"],
    ]);
    expect(npmPurl("@scope/pkg", "1.0.0")).toBe("pkg:npm/%40scope/pkg@1.0.0");
    expect(npmPurl("pkg", "1.0.0", "https://npm.example.com/pkg/-/pkg-1.0.0.tgz")).toBe(
      "pkg:npm/pkg@1.0.0?download_url=https%3A%2F%2Fnpm.example.com%2Fpkg%2F-%2Fpkg-1.0.0.tgz",
    );
    expect(npmPurl("pkg", "1.0.0", "https://registry.npmjs.org/pkg/-/pkg-1.0.0.tgz")).toBe(
      "pkg:npm/pkg@1.0.0",
    );
  });
});

describe("lockfiles in a workspace", () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), "airlock-sbom-"));
  });
  afterEach(async () => rm(dir, { recursive: true, force: true }));

  it("finds the root lockfile and nested ones, not node_modules' or symlinks", async () => {
    await writeFile(join(dir, "package-lock.json"), "{}");
    await mkdir(join(dir, "apps/api"), { recursive: true });
    await writeFile(join(dir, "apps/api/package-lock.json"), "{}");
    await writeFile(join(dir, "apps/api/npm-shrinkwrap.json"), "{}");
    await mkdir(join(dir, "node_modules/x"), { recursive: true });
    await writeFile(join(dir, "node_modules/x/package-lock.json"), "{}");
    await mkdir(join(dir, "evil"));
    await symlink("/etc/passwd", join(dir, "evil/package-lock.json"));
    expect(await findLockfiles(dir)).toEqual(["package-lock.json", "apps/api/npm-shrinkwrap.json"]);
    expect(await findLockfiles(dir, { depth: 0 })).toEqual(["package-lock.json"]);
  });

  it("reads a lockfile but never through a symlink, and never quotes bad JSON", async () => {
    await writeFile(join(dir, "package-lock.json"), JSON.stringify({ lockfileVersion: 3, packages: {} }));
    expect(await readLockfile(join(dir, "package-lock.json"))).toEqual({ lockfileVersion: 3, packages: {} });
    await symlink(join(dir, "package-lock.json"), join(dir, "link.json"));
    await expect(readLockfile(join(dir, "link.json"))).rejects.toThrow(/not a regular file/);
    await writeFile(join(dir, "bad.json"), "root:x:0:0:SECRET-CONTENT");
    const err = await readLockfile(join(dir, "bad.json")).catch((e: unknown) => e);
    expect((err as AirlockError).message).toBe("package-lock.json is not valid JSON");
  });
});
