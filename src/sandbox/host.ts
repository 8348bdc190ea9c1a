import { lstat, readlink } from "node:fs/promises";
import { ROOT_ENTRY_PATHS, type RootEntry } from "./bwrap-args.js";
import { isErrno } from "./cgroups/fs.js";

export const BWRAP = "/usr/bin/bwrap";
export const SETPRIV = "/usr/bin/setpriv";
/** The launcher shell runs as root before privileges drop, so it is called by absolute path only. */
export const BASH = "/bin/bash";
export const WRAPPER_PATH = "/usr/sbin:/usr/bin:/sbin:/bin";

/** Mirror the host's /bin, /lib… so binaries under /usr find their interpreters and libraries. */
export async function probeRootEntries(): Promise<RootEntry[]> {
  const out: RootEntry[] = [];
  for (const path of ROOT_ENTRY_PATHS) {
    try {
      const st = await lstat(path);
      if (st.isSymbolicLink()) out.push({ path, kind: "symlink", target: await readlink(path) });
      else if (st.isDirectory()) out.push({ path, kind: "dir" });
    } catch (e) {
      if (!isErrno(e, "ENOENT")) throw e;
    }
  }
  return out;
}
