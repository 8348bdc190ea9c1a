import { closeSync, openSync, readFileSync, rmSync, writeSync } from "node:fs";
import { AirlockError } from "../errors.js";

/**
 * One controller per data directory: the startup reaper treats every sandbox it finds as left by a
 * dead predecessor, which is only true if no other controller is alive. The lock file holds the
 * owner's pid; a lock whose pid is gone is stale and taken over.
 */
export function acquireControllerLock(file: string): () => void {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      return () => {
        try {
          if (readFileSync(file, "utf8") === String(process.pid)) rmSync(file);
        } catch {
          // Already gone.
        }
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      const pid = Number(readFileSync(file, "utf8"));
      if (pid && pid !== process.pid && isAlive(pid)) {
        throw new AirlockError(
          "CONFLICT",
          `another Airlock controller (pid ${pid}) is using this data directory`,
          {
            hint: "talk to it with --server URL, or stop it first",
          },
        );
      }
      rmSync(file, { force: true });
    }
  }
  throw new AirlockError("CONFLICT", `could not take the controller lock ${file}`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
