/**
 * Host directories. rootDir is root-owned 0711 so job uids can traverse to their own workspace
 * (bwrap opens it as the job uid) but cannot list the others; each workspace is 0700 to its uid.
 */
import { execFile } from "node:child_process";
import { chmod, chown, lstat, mkdir, readdir, realpath, stat } from "node:fs/promises";
import { dirname, isAbsolute, join, relative, resolve } from "node:path";
import { promisify } from "node:util";
import { AirlockError } from "../errors.js";
import { isErrno } from "./cgroups/fs.js";

export const HOME_DIR_NAME = ".home";

/** Create rootDir 0711 and check every ancestor lets other uids through. */
export async function ensureRoot(rootDir: string): Promise<RootDir> {
  const root = resolve(rootDir);
  await mkdir(root, { recursive: true, mode: 0o711 });
  await chown(root, 0, 0);
  await chmod(root, 0o711);
  const real = await realpath(root);
  for (let dir = dirname(real); ; dir = dirname(dir)) {
    const st = await stat(dir);
    if ((st.mode & 0o001) === 0) {
      throw new AirlockError(
        "SANDBOX_UNAVAILABLE",
        `job uids cannot traverse ${dir} to reach the sandbox root ${real}`,
        {
          hint: `chmod o+x ${dir} (only search permission is needed, not read), or put the data dir elsewhere`,
        },
      );
    }
    if (dir === "/") break;
  }
  return { given: root, real };
}

/** Where the driver keeps its state; `given` may be a symlinked spelling of `real`. */
export interface RootDir {
  given: string;
  real: string;
}

/**
 * `dir` as a path under the real root. Lexical only (no filesystem access), so nothing is
 * created outside the root before the check.
 */
export function insideRoot(root: RootDir, dir: string): string {
  const abs = resolve(dir);
  for (const base of [root.real, root.given]) {
    const rel = relative(base, abs);
    if (rel !== "" && !rel.startsWith("..") && !isAbsolute(rel)) return join(root.real, rel);
  }
  throw new AirlockError("SANDBOX_FAILED", `workspace ${abs} is not inside the sandbox root ${root.given}`, {
    hint: "workspaces must live under the driver's rootDir, which teardown and the reaper own",
  });
}

export async function prepareWorkspace(root: RootDir, dir: string, uid: number): Promise<string> {
  const abs = insideRoot(root, dir);
  await mkdir(dirname(abs), { recursive: true, mode: 0o711 });
  // A symlinked parent could point the job's only writable bind at an arbitrary host path.
  if ((await realpath(dirname(abs))) !== dirname(abs)) {
    throw new AirlockError("SANDBOX_FAILED", `workspace parent ${dirname(abs)} contains a symlink`, {
      hint: "use a plain directory path under the sandbox root",
    });
  }
  try {
    await mkdir(abs, { mode: 0o700 });
  } catch (e) {
    if (!isErrno(e, "EEXIST")) throw e;
    const st = await lstat(abs);
    if (!st.isDirectory()) {
      throw new AirlockError("SANDBOX_FAILED", `workspace ${abs} exists and is not a directory`, {
        hint: "remove it or pick another workspace path",
      });
    }
  }
  await chown(abs, uid, uid);
  await chmod(abs, 0o700);
  const home = join(abs, HOME_DIR_NAME);
  await mkdir(home, { recursive: true, mode: 0o700 });
  await chown(home, uid, uid);
  return abs;
}

const RM = "/usr/bin/rm";
const run = promisify(execFile);

/**
 * rm -rf of a tree the job shaped. Node's fs.rm builds full paths, so a job that nests
 * directories past PATH_MAX (4096 bytes, reachable with relative mkdir/cd) made it fail with
 * ENAMETOOLONG and the workspace survived teardown and broke the reaper at the next startup.
 * GNU rm walks with openat (no path length limit), never follows symlinks and, with
 * --one-file-system, never descends into a mount.
 */
async function removeTree(path: string): Promise<void> {
  try {
    await run(RM, ["-rf", "--one-file-system", "--", path], { env: {}, maxBuffer: 1 << 20 });
  } catch (e) {
    const stderr = String((e as { stderr?: unknown }).stderr ?? "").slice(0, 500);
    throw new AirlockError(
      "SANDBOX_FAILED",
      `could not remove ${path}: ${stderr.trim() || (e as Error).message}`,
      {
        hint: "remove it by hand; its top directory is root-owned 0700, so no job can reach what is left",
      },
    );
  }
}

/**
 * Before anything is removed, the top directory becomes root's and 0700: whatever a failed wipe
 * leaves behind is out of reach of the uid, which the next job may be given.
 */
async function lockAndRemove(path: string): Promise<void> {
  let st: Awaited<ReturnType<typeof lstat>>;
  try {
    st = await lstat(path);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return;
    throw e;
  }
  if (st.isDirectory()) {
    await chown(path, 0, 0);
    await chmod(path, 0o700);
  }
  await removeTree(path);
}

/** rm -rf that never follows symlinks, copes with any depth and tolerates a missing dir. */
export async function wipeDir(root: RootDir, dir: string): Promise<void> {
  await lockAndRemove(insideRoot(root, dir));
}

/** Remove every entry under root (reaper). Returns how many top-level entries went. */
export async function wipeRootContents(root: RootDir): Promise<number> {
  let names: string[];
  try {
    names = await readdir(root.real);
  } catch (e) {
    if (isErrno(e, "ENOENT")) return 0;
    throw e;
  }
  for (const n of names) await lockAndRemove(join(root.real, n));
  return names.length;
}
