import { constants, lstatSync } from "node:fs";
import { lstat, mkdir, open, realpath, rm, symlink } from "node:fs/promises";
import { join } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar from "tar-stream";
import { AirlockError } from "../errors.js";
import { normalise } from "./archive.js";

/** Most symlinks one path may pass through, as the kernel's MAXSYMLINKS. */
const MAX_HOPS = 40;

/**
 * Unpacks an artifact's tar stream into `outDir` on the caller's machine. The archive is the
 * job's work, so nothing it names may land outside outDir:
 * - names are normalised as at upload: no "..", no control characters, no absolute paths;
 * - no file is written through a symlink: each parent is checked component by component (an
 *   earlier download into the same directory may have left links), the file itself is opened
 *   O_NOFOLLOW, and a fifo or device in its place is refused, not opened for writing;
 * - symlinks are made last, and only those that resolve inside outDir, following the archive's
 *   other links as the kernel would (`a -> x/y/up/..` with `x/y/up -> ../..` climbs out).
 */
export async function extractArtifact(stream: Readable, outDir: string): Promise<{ files: number }> {
  await mkdir(outDir, { recursive: true });
  // outDir itself is the operator's choice and may be reached through a link; below it, none.
  const root = await realpath(outDir);
  const links = new Map<string, string>();
  // A blob's digest is checked only after its last byte has gone by, so a corrupt file can be
  // fully written before the error arrives: on failure, every file written here is removed again.
  const written: string[] = [];
  const writes: Promise<unknown>[] = [];
  let files = 0;
  const extract = tar.extract();
  extract.on("entry", (header, entry, next) => {
    entry.on("error", () => undefined);
    const done = (err?: unknown) => (err ? next(err as Error) : next());
    let rel: string;
    try {
      rel = normalise(header.name);
    } catch (err) {
      entry.resume();
      done(err);
      return;
    }
    if (header.type === "symlink" && rel) {
      links.set(rel, header.linkname ?? "");
      entry.resume();
      entry.on("end", () => done());
      return;
    }
    if (header.type !== "file" || !rel) {
      entry.resume();
      entry.on("end", () => done());
      return;
    }
    const path = join(root, rel);
    const write = (async () => {
      await makeParents(root, rel);
      const fh = await open(
        path,
        constants.O_WRONLY |
          constants.O_CREAT |
          constants.O_TRUNC |
          constants.O_NOFOLLOW |
          constants.O_NONBLOCK,
        (header.mode ?? 0o644) & 0o755,
      ).catch((err: unknown) => {
        throw refused(rel, `cannot be written (${(err as NodeJS.ErrnoException).code ?? "error"})`);
      });
      written.push(path);
      if (!(await fh.stat()).isFile()) {
        await fh.close();
        throw refused(rel, "exists and is not a regular file");
      }
      await pipeline(entry as unknown as Readable, fh.createWriteStream());
    })();
    writes.push(write);
    write.then(() => {
      files++;
      done();
    }, done);
  });
  try {
    await pipeline(stream, extract);
    for (const [rel, target] of links) {
      if (!staysInside(root, rel, links))
        throw refused(rel, `is a symlink to ${JSON.stringify(target)}, outside the download`);
    }
    for (const [rel, target] of links) {
      await makeParents(root, rel);
      await symlink(target, join(root, rel));
      written.push(join(root, rel));
    }
  } catch (err) {
    await Promise.allSettled(writes);
    await Promise.all(written.map((p) => rm(p, { force: true })));
    throw err;
  }
  return { files };
}

function refused(rel: string, why: string): AirlockError {
  return new AirlockError("ARTIFACT_INVALID", `${JSON.stringify(rel)} ${why}`, {
    hint: "the artifact was not written; nothing of it is left in the output directory",
  });
}

/** Creates the directories above `rel` one at a time, refusing any that is a link or not a directory. */
async function makeParents(root: string, rel: string): Promise<void> {
  const parts = rel.split("/").slice(0, -1);
  let dir = root;
  for (const part of parts) {
    dir = join(dir, part);
    try {
      await mkdir(dir, { mode: 0o755 });
      continue;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
    }
    if (!(await lstat(dir)).isDirectory())
      throw refused(rel, `would be written through ${JSON.stringify(dir)}, which is not a directory`);
  }
}

/**
 * Resolves a link the way the kernel will once every link of the archive exists: through the
 * archive's own links and any link already on disk, counting ".." against outDir.
 */
function staysInside(root: string, rel: string, links: ReadonlyMap<string, string>): boolean {
  const first = links.get(rel) ?? "";
  if (first.startsWith("/")) return false;
  const at = rel.split("/").slice(0, -1);
  let pending = first.split("/");
  let hops = 0;
  while (pending.length > 0) {
    const c = pending.shift() as string;
    if (c === "" || c === ".") continue;
    if (c === "..") {
      if (at.length === 0) return false;
      at.pop();
      continue;
    }
    at.push(c);
    const here = at.join("/");
    const target = links.get(here);
    if (target === undefined) {
      try {
        const st = lstatSync(join(root, here));
        // A link already on disk (not ours): refuse rather than guess where it leads.
        if (st.isSymbolicLink()) return false;
      } catch {
        // Dangling from here on: nothing more to follow.
      }
      continue;
    }
    if (++hops > MAX_HOPS || target.startsWith("/")) return false;
    at.pop();
    pending = [...target.split("/"), ...pending];
  }
  return true;
}
