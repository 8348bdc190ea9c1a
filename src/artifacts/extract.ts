import { createWriteStream } from "node:fs";
import { mkdir, rm, symlink } from "node:fs/promises";
import { dirname, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { AirlockError } from "../errors.js";

/**
 * Unpacks an artifact's tar stream into `outDir` on the caller's machine. Every path must stay
 * inside outDir; links are created last so no file is ever written through one.
 */
export async function extractArtifact(stream: Readable, outDir: string): Promise<{ files: number }> {
  const root = resolve(outDir);
  const inside = (p: string) => {
    const full = resolve(root, p);
    if (full !== root && !full.startsWith(root + sep)) {
      throw new AirlockError("ARTIFACT_INVALID", `${p} would be written outside ${root}`);
    }
    return full;
  };
  const links: { path: string; target: string }[] = [];
  // A blob's digest is checked only after its last byte has gone by, so a corrupt file can be
  // fully written before the error arrives: on failure, every file written here is removed again.
  const written: string[] = [];
  const writes: Promise<unknown>[] = [];
  let files = 0;
  const extract = tar.extract();
  extract.on("entry", (header, entry, next) => {
    entry.on("error", () => undefined);
    const done = (err?: unknown) => (err ? next(err as Error) : next());
    try {
      const path = inside(header.name);
      if (header.type === "symlink") {
        links.push({ path, target: header.linkname ?? "" });
        entry.resume();
        entry.on("end", () => done());
        return;
      }
      if (header.type !== "file") {
        entry.resume();
        entry.on("end", () => done());
        return;
      }
      written.push(path);
      const write = mkdir(dirname(path), { recursive: true }).then(() =>
        pipeline(
          entry as unknown as Readable,
          createWriteStream(path, { mode: (header.mode ?? 0o644) & 0o755 }),
        ),
      );
      writes.push(write);
      write.then(() => {
        files++;
        done();
      }, done);
    } catch (err) {
      entry.resume();
      done(err);
    }
  });
  try {
    await pipeline(stream, extract);
  } catch (err) {
    await Promise.allSettled(writes);
    await Promise.all(written.map((p) => rm(p, { force: true })));
    throw err;
  }
  for (const l of links) await symlink(l.target, l.path);
  return { files };
}
