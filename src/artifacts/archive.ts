import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import canonicalize from "canonicalize";
import tar from "tar-stream";
import { AirlockError } from "../errors.js";
import type { ArtifactStore, Digest } from "./store.js";

export interface ManifestEntry {
  path: string;
  type: "file" | "symlink";
  digest?: Digest;
  size?: number;
  mode?: number;
  target?: string;
}

export interface Manifest {
  files: ManifestEntry[];
}

/** Bounds what one upload may hold, so a job cannot fill the controller's disk through it. */
export interface IngestLimits {
  maxBytes: number;
  maxFiles: number;
}

/**
 * Stores every regular file of a tar stream as its own blob and returns the manifest, whose own
 * digest (over canonical JSON) names the artifact. Directories are implied by paths; device nodes
 * and hard links are refused rather than guessed at.
 */
export async function ingestTar(
  store: ArtifactStore,
  source: Readable,
  limits: IngestLimits,
): Promise<{ manifest: Manifest; digest: Digest; size: number }> {
  const files: ManifestEntry[] = [];
  let total = 0;
  const extract = tar.extract();
  extract.on("entry", (header, stream, next) => {
    const done = (err?: unknown) => (err ? next(err as Error) : next());
    // Refusing an entry destroys the extractor and its entry streams with the same error; the
    // pipeline below reports it once, so the entry stream's copy must not go unhandled.
    stream.on("error", () => undefined);
    let path: string;
    try {
      path = normalise(header.name);
    } catch (err) {
      stream.resume();
      done(err);
      return;
    }
    if (header.type === "directory" || !path) {
      stream.resume();
      stream.on("end", () => done());
      return;
    }
    if (header.type === "symlink") {
      files.push({ path, type: "symlink", target: header.linkname ?? "" });
      stream.resume();
      stream.on("end", () => done());
      return;
    }
    if (header.type !== "file" && header.type !== "contiguous-file") {
      stream.resume();
      done(new AirlockError("ARTIFACT_INVALID", `${path}: ${header.type} entries cannot be uploaded`));
      return;
    }
    total += header.size ?? 0;
    if (files.length >= limits.maxFiles || total > limits.maxBytes) {
      stream.resume();
      done(
        new AirlockError(
          "ARTIFACT_INVALID",
          `artifact exceeds its limit of ${limits.maxFiles} files or ${limits.maxBytes} bytes`,
        ),
      );
      return;
    }
    store.put(stream as AsyncIterable<Buffer>).then(({ digest, size }) => {
      files.push({ path, type: "file", digest, size, mode: (header.mode ?? 0o644) & 0o777 });
      done();
    }, done);
  });
  await pipeline(source, extract);
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest: Manifest = { files };
  const { digest } = await store.put(canonicalize(manifest) ?? "{}");
  return { manifest, digest, size: total };
}

/** Writes an artifact back out as a tar stream, verifying each blob against its digest on the way. */
export function packManifest(store: ArtifactStore, manifest: Manifest): Readable {
  const pack = tar.pack();
  (async () => {
    for (const entry of manifest.files) {
      if (entry.type === "symlink") {
        pack.entry({ name: entry.path, type: "symlink", linkname: entry.target ?? "" });
        continue;
      }
      const digest = entry.digest as Digest;
      const sink = pack.entry({ name: entry.path, size: entry.size ?? 0, mode: entry.mode ?? 0o644 });
      await pipeline(store.read(digest), sink);
    }
    pack.finalize();
  })().catch((err: Error) => pack.destroy(err));
  return Readable.from(pack as AsyncIterable<Buffer>);
}

function normalise(name: string): string {
  const parts = name.split("/").filter((p) => p && p !== ".");
  if (parts.includes("..")) throw new AirlockError("ARTIFACT_INVALID", `${name}: paths may not contain ".."`);
  return parts.join("/");
}
