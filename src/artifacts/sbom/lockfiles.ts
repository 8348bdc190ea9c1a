/**
 * Finding and reading lockfiles in a job's workspace. The workspace is the job's to shape, so
 * nothing here follows a symlink (a `package-lock.json -> /etc/airlock/master.key` must not be
 * read by the controller), reads an unbounded file, or puts file content in an error message.
 */
import { constants } from "node:fs";
import { lstat, open, readdir } from "node:fs/promises";
import { join } from "node:path";
import { AirlockError } from "../../errors.js";

/** npm's own order: a shrinkwrap, when present, is what npm installs from. */
const LOCKFILE_NAMES = ["npm-shrinkwrap.json", "package-lock.json"] as const;
/** Large monorepo lockfiles reach tens of MB; beyond this the file is not a lockfile we read. */
export const MAX_LOCKFILE_BYTES = 64 * 1024 * 1024;

export interface FindOptions {
  /** How many directory levels below the root to look (default 2; 0 = the root only). */
  depth?: number;
}

/**
 * Lockfiles in `dir` and its subdirectories (not node_modules, not dot-directories), as paths
 * relative to `dir`, root first then in name order. Regular files only; one per directory.
 */
export async function findLockfiles(dir: string, options: FindOptions = {}): Promise<string[]> {
  const maxDepth = options.depth ?? 2;
  const found: string[] = [];
  const walk = async (rel: string, depth: number): Promise<void> => {
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(join(dir, rel), { withFileTypes: true });
    } catch {
      return;
    }
    const files = new Set(entries.filter((e) => e.isFile()).map((e) => e.name));
    const lock = LOCKFILE_NAMES.find((n) => files.has(n));
    if (lock) found.push(rel ? `${rel}/${lock}` : lock);
    if (depth >= maxDepth) return;
    const subdirs = entries
      .filter((e) => e.isDirectory() && e.name !== "node_modules" && !e.name.startsWith("."))
      .map((e) => e.name)
      .sort();
    for (const d of subdirs) await walk(rel ? `${rel}/${d}` : d, depth + 1);
  };
  await walk("", 0);
  return found;
}

/**
 * Reads and parses a lockfile without following a symlink at its last component, refusing
 * anything that is not a regular file or is larger than MAX_LOCKFILE_BYTES. The caller passes a
 * path found by findLockfiles inside the workspace (whose directories are not symlinks, as
 * findLockfiles does not descend into them).
 */
export async function readLockfile(path: string, name = "package-lock.json"): Promise<unknown> {
  const st = await lstat(path).catch(() => undefined);
  if (!st?.isFile()) throw new AirlockError("ARTIFACT_INVALID", `${name} is not a regular file`);
  if (st.size > MAX_LOCKFILE_BYTES) {
    throw new AirlockError("ARTIFACT_INVALID", `${name} is larger than ${MAX_LOCKFILE_BYTES} bytes`);
  }
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW).catch(() => {
    throw new AirlockError("ARTIFACT_INVALID", `${name} cannot be opened`);
  });
  let text: string;
  try {
    const fst = await fh.stat();
    if (!fst.isFile() || fst.size > MAX_LOCKFILE_BYTES) {
      throw new AirlockError(
        "ARTIFACT_INVALID",
        `${name} is not a regular file of at most ${MAX_LOCKFILE_BYTES} bytes`,
      );
    }
    text = await fh.readFile("utf8");
  } finally {
    await fh.close();
  }
  try {
    return JSON.parse(text) as unknown;
  } catch {
    // JSON.parse's message quotes the text around the error; the file may hold anything.
    throw new AirlockError("ARTIFACT_INVALID", `${name} is not valid JSON`);
  }
}
