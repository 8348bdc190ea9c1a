/**
 * CycloneDX SBOM from an npm lockfile (v2/v3 `packages` map), built with the OWASP
 * @cyclonedx/cyclonedx-library models and serialised for spec 1.6. Pure: parsed JSON in, a
 * document out; `lockfiles.ts` does the (careful) reading from a job's workspace.
 *
 * What goes in: every installed package (`packages` keys other than the root) as a `library`
 * component named by its purl (`pkg:npm/%40scope/name@version`), which is also its bom-ref, so the
 * same name@version installed at several paths is one component; sha512/sha384/sha256/sha1 hashes
 * from `integrity` (base64 in the lockfile, hex in CycloneDX); dev and optional packages marked
 * with scope `optional` and the `cdx:npm:package:development` property, as cyclonedx-npm does.
 * The dependency graph is resolved the way Node resolves `require`: from a package's own
 * node_modules up through its ancestors' to the root's, following workspace links.
 */
import { randomUUID } from "node:crypto";
import { Enums, Models, Serialize, Spec } from "@cyclonedx/cyclonedx-library";
import { PackageURL } from "packageurl-js";
import { z } from "zod";
import { type Clock, systemClock } from "../../clock.js";
import { AirlockError } from "../../errors.js";

/** The in-toto predicate type for a CycloneDX document (as used by cosign and GitHub). */
export const CYCLONEDX_PREDICATE_TYPE = "https://cyclonedx.org/bom";
export const CYCLONEDX_MEDIA_TYPE = "application/vnd.cyclonedx+json";
export const CYCLONEDX_SPEC_VERSION = "1.6";

const deps = z.record(z.string(), z.string()).optional();

const packageEntry = z.object({
  name: z.string().optional(),
  version: z.string().optional(),
  resolved: z.string().optional(),
  integrity: z.string().optional(),
  link: z.boolean().optional(),
  dev: z.boolean().optional(),
  optional: z.boolean().optional(),
  devOptional: z.boolean().optional(),
  inBundle: z.boolean().optional(),
  dependencies: deps,
  optionalDependencies: deps,
  peerDependencies: deps,
  devDependencies: deps,
});
type PackageEntry = z.infer<typeof packageEntry>;

const lockfileSchema = z.object({
  name: z.string().optional(),
  version: z.string().optional(),
  lockfileVersion: z.number().int(),
  packages: z.record(z.string(), packageEntry).optional(),
});

export interface SbomSubject {
  /** The project the lockfile belongs to (defaults to the lockfile's own name/version). */
  name?: string | undefined;
  version?: string | undefined;
}

export interface SbomOptions {
  /** Include devDependencies (default true: a CI build ran with them installed). */
  includeDev?: boolean;
  /** Name and version of the generator, recorded in metadata.tools. */
  tool?: { name: string; version: string };
  clock?: Clock;
  /** Source of the serial number's UUID; injected by tests for stable output. */
  uuid?: () => string;
}

export interface Sbom {
  /** The CycloneDX JSON document, as it should be stored and signed. */
  json: string;
  /** Parsed form of `json`. */
  document: Record<string, unknown>;
  mediaType: typeof CYCLONEDX_MEDIA_TYPE;
  predicateType: typeof CYCLONEDX_PREDICATE_TYPE;
  /** Components listed (distinct purls). */
  components: number;
  /** Declared dependencies the lockfile has no installed package for (non-optional, non-peer). */
  unresolved: string[];
}

const hashAlgorithms: Record<string, Enums.HashAlgorithm> = {
  sha512: Enums.HashAlgorithm["SHA-512"],
  sha384: Enums.HashAlgorithm["SHA-384"],
  sha256: Enums.HashAlgorithm["SHA-256"],
  sha1: Enums.HashAlgorithm["SHA-1"],
};

/** SRI `integrity` ("sha512-<base64> sha1-<base64>") → CycloneDX hashes (hex). Unknown algorithms are skipped. */
export function integrityHashes(integrity: string | undefined): Array<[Enums.HashAlgorithm, string]> {
  const out: Array<[Enums.HashAlgorithm, string]> = [];
  for (const part of (integrity ?? "").split(/\s+/)) {
    const m = /^(sha512|sha384|sha256|sha1)-([A-Za-z0-9+/]+={0,2})(\?.*)?$/.exec(part);
    if (!m) continue;
    const alg = hashAlgorithms[m[1] as string] as Enums.HashAlgorithm;
    if (!out.some(([a]) => a === alg)) out.push([alg, Buffer.from(m[2] as string, "base64").toString("hex")]);
  }
  return out;
}

/** `node_modules/a/node_modules/@s/b` → `@s/b`; a workspace path (`packages/x`) has no name of its own. */
function nameFromPath(path: string): string | undefined {
  const i = path.lastIndexOf("node_modules/");
  return i === -1 ? undefined : path.slice(i + "node_modules/".length);
}

function splitName(name: string): { group: string | undefined; name: string } {
  if (name.startsWith("@") && name.includes("/")) {
    const slash = name.indexOf("/");
    return { group: name.slice(0, slash), name: name.slice(slash + 1) };
  }
  return { group: undefined, name };
}

/** The purl of an npm package; non-registry sources are kept as qualifiers. */
export function npmPurl(fullName: string, version: string | undefined, resolved?: string): string {
  const { group, name } = splitName(fullName);
  const qualifiers: Record<string, string> = {};
  if (resolved) {
    if (/^git(\+[a-z]+)?:|^github:/.test(resolved)) qualifiers.vcs_url = resolved;
    else if (/^https?:/.test(resolved) && !resolved.startsWith("https://registry.npmjs.org/")) {
      qualifiers.download_url = resolved;
    }
  }
  return new PackageURL(
    "npm",
    group,
    name,
    version || undefined,
    Object.keys(qualifiers).length > 0 ? qualifiers : undefined,
    undefined,
  ).toString();
}

/** Where Node would find `name` when required from the package at `from` ("" is the root). */
function resolvePath(packages: Record<string, PackageEntry>, from: string, name: string): string | undefined {
  let base = from;
  for (;;) {
    const candidate = `${base ? `${base}/` : ""}node_modules/${name}`;
    const hit = packages[candidate];
    if (hit) return hit.link && hit.resolved !== undefined ? hit.resolved : candidate;
    if (base === "") return undefined;
    const i = base.lastIndexOf("/node_modules/");
    base = i !== -1 ? base.slice(0, i) : "";
  }
}

/**
 * Builds the SBOM. Throws ARTIFACT_INVALID for a lockfile this cannot read (v1, which has no
 * `packages` map, or a shape that is not a lockfile); never echoes the file's content.
 */
export function sbomFromPackageLock(
  lockJson: unknown,
  subject: SbomSubject = {},
  options: SbomOptions = {},
): Sbom {
  const parsed = lockfileSchema.safeParse(lockJson);
  if (!parsed.success) {
    throw new AirlockError("ARTIFACT_INVALID", "package-lock.json is not an npm lockfile", {
      details: { issues: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.code}`).slice(0, 5) },
    });
  }
  const lock = parsed.data;
  if (lock.lockfileVersion < 2 || !lock.packages) {
    throw new AirlockError(
      "ARTIFACT_INVALID",
      `package-lock.json version ${lock.lockfileVersion} has no "packages" map; no SBOM can be made from it`,
      { hint: "regenerate it with npm 7 or later (`npm install --package-lock-only`)" },
    );
  }
  const packages = lock.packages;
  const includeDev = options.includeDev ?? true;
  const root = packages[""] ?? {};

  const bom = new Models.Bom();
  bom.serialNumber = `urn:uuid:${(options.uuid ?? randomUUID)()}`;
  bom.metadata.timestamp = (options.clock ?? systemClock).now();
  const tool = options.tool ?? { name: "airlock", version: "0.1.0" };
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, tool.name, { version: tool.version }),
  );
  const rootName = subject.name ?? root.name ?? lock.name ?? "project";
  const rootVersion = subject.version ?? root.version ?? lock.version;
  const rootSplit = splitName(rootName);
  const rootComponent = new Models.Component(Enums.ComponentType.Application, rootSplit.name, {
    group: rootSplit.group,
    version: rootVersion,
    purl: npmPurl(rootName, rootVersion),
    bomRef: npmPurl(rootName, rootVersion),
  });
  bom.metadata.component = rootComponent;

  // One component per purl; paths map onto it.
  const byPurl = new Map<string, Models.Component>();
  const atPath = new Map<string, Models.Component>();
  const isDev = (e: PackageEntry) => e.dev === true;
  for (const [path, entry] of Object.entries(packages)) {
    if (path === "" || entry.link) continue;
    if (!includeDev && isDev(entry)) continue;
    const fullName = entry.name ?? nameFromPath(path);
    if (!fullName) continue;
    const purl = npmPurl(fullName, entry.version, entry.resolved);
    let c = byPurl.get(purl);
    if (!c) {
      const { group, name } = splitName(fullName);
      const optional = entry.dev || entry.optional || entry.devOptional;
      c = new Models.Component(Enums.ComponentType.Library, name, {
        group,
        version: entry.version,
        purl,
        bomRef: purl,
        scope: optional ? Enums.ComponentScope.Optional : Enums.ComponentScope.Required,
      });
      for (const [alg, hex] of integrityHashes(entry.integrity)) c.hashes.set(alg, hex);
      if (isDev(entry)) c.properties.add(new Models.Property("cdx:npm:package:development", "true"));
      if (entry.inBundle) c.properties.add(new Models.Property("cdx:npm:package:bundled", "true"));
      if (!path.includes("node_modules/"))
        c.properties.add(new Models.Property("cdx:npm:package:path", path));
      byPurl.set(purl, c);
      bom.components.add(c);
    }
    atPath.set(path, c);
  }

  const unresolved: string[] = [];
  const addEdges = (from: string, component: Models.Component, entry: PackageEntry, withDev: boolean) => {
    const required = { ...entry.dependencies, ...(withDev && includeDev ? entry.devDependencies : {}) };
    const optional = { ...entry.optionalDependencies, ...entry.peerDependencies };
    for (const [name, must] of [
      ...Object.keys(required).map((n) => [n, true] as const),
      ...Object.keys(optional).map((n) => [n, false] as const),
    ]) {
      const target = resolvePath(packages, from, name);
      if (target === undefined) {
        if (must) unresolved.push(`${from || "<root>"} → ${name}`);
        continue;
      }
      // Absent from atPath only when left out on purpose (a dev package without includeDev).
      const dep = atPath.get(target);
      if (dep && dep !== component) component.dependencies.add(dep.bomRef);
    }
  };
  addEdges("", rootComponent, root, true);
  for (const [path, entry] of Object.entries(packages)) {
    const c = atPath.get(path);
    // Workspace members (paths outside node_modules) declare devDependencies like the root does.
    if (c) addEdges(path, c, entry, !path.includes("node_modules/"));
  }

  const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));
  const json = serializer.serialize(bom, { sortLists: true, space: 2 });
  return {
    json,
    document: JSON.parse(json) as Record<string, unknown>,
    mediaType: CYCLONEDX_MEDIA_TYPE,
    predicateType: CYCLONEDX_PREDICATE_TYPE,
    components: byPurl.size,
    unresolved: [...new Set(unresolved)].sort(),
  };
}
