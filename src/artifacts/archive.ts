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
  let entries = 0;
  const extract = tar.extract();
  // A refusal destroys the extractor; when that comes after its writable side finished, no
  // pipeline listens any more and the 'error' would be uncaught (a crash of the controller).
  let failure: unknown;
  extract.on("error", (err) => {
    failure ??= err;
  });
  const puts: Promise<unknown>[] = [];
  extract.on("entry", (header, stream, next) => {
    const done = (err?: unknown) => {
      if (!err) return next();
      failure ??= err;
      next(err as Error);
    };
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
    // Every entry costs manifest memory, links and directories included, not just files.
    if (++entries > limits.maxFiles * 2) {
      stream.resume();
      done(new AirlockError("ARTIFACT_INVALID", `artifact has more than ${limits.maxFiles * 2} entries`));
      return;
    }
    if (header.type === "directory" || !path) {
      stream.resume();
      stream.on("end", () => done());
      return;
    }
    if (header.type === "symlink") {
      const target = header.linkname ?? "";
      if (files.length >= limits.maxFiles) {
        stream.resume();
        done(new AirlockError("ARTIFACT_INVALID", `artifact exceeds its limit of ${limits.maxFiles} files`));
        return;
      }
      if (target.length > MAX_PATH_BYTES || CONTROL.test(target)) {
        stream.resume();
        done(
          new AirlockError(
            "ARTIFACT_INVALID",
            `${path}: symlink target is too long or holds control characters`,
          ),
        );
        return;
      }
      files.push({ path, type: "symlink", target });
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
    const put = store.put(stream as AsyncIterable<Buffer>).then(({ digest, size }) => {
      files.push({ path, type: "file", digest, size, mode: (header.mode ?? 0o644) & 0o777 });
      done();
    }, done);
    puts.push(put);
  });
  try {
    await pipeline(source, extract);
  } catch (err) {
    throw failure ?? err;
  }
  await Promise.all(puts);
  if (failure) throw failure;
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

/** PATH_MAX on Linux; also bounds what one manifest entry costs. */
const MAX_PATH_BYTES = 4096;
const MAX_NAME_BYTES = 255;
// C0 controls and DEL: a newline or an escape sequence in a name reaches logs, tables and
// terminals that print the manifest; no build needs one.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point.
const CONTROL = /[\u0000-\u001f\u007f]/;

/**
 * A tar entry's name as a relative path: leading "/" and "." components dropped, ".." refused
 * (a consumer that joins it to a directory must stay inside), control characters and names
 * longer than the kernel's limits refused.
 */
export function normalise(name: string): string {
  const shown = JSON.stringify(name.slice(0, 200));
  if (CONTROL.test(name))
    throw new AirlockError("ARTIFACT_INVALID", `${shown}: paths may not hold control characters`);
  const parts = name.split("/").filter((p) => p && p !== ".");
  if (parts.includes(".."))
    throw new AirlockError("ARTIFACT_INVALID", `${shown}: paths may not contain ".."`);
  const path = parts.join("/");
  if (Buffer.byteLength(path) > MAX_PATH_BYTES || parts.some((p) => Buffer.byteLength(p) > MAX_NAME_BYTES)) {
    throw new AirlockError(
      "ARTIFACT_INVALID",
      `${shown}…: path longer than ${MAX_PATH_BYTES} bytes or a name longer than ${MAX_NAME_BYTES}`,
    );
  }
  return path;
}
