import { readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";

/** Removes an (empty) cgroup parent the bench created in every hierarchy; ignores what is absent. */
export async function removeCgroupParent(name: string): Promise<void> {
  for (const h of await readdir("/sys/fs/cgroup").catch(() => [] as string[])) {
    await rmdir(join("/sys/fs/cgroup", h, name)).catch(() => undefined);
  }
}
