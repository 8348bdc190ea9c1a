/**
 * A host-wide mutex for what every Airlock installation on a host shares: `net.ipv4.ip_forward`.
 * One installation switching forwarding off while another's jobs still pass traffic through would
 * silently break the other's passthrough, so deciding and switching happen under this lock.
 * An exclusive lock file holding the owner's pid; a lock whose pid is gone is stale and taken over.
 */
import { closeSync, mkdirSync, openSync, readFileSync, rmSync, statSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { AirlockError } from "../errors.js";

export const defaultNetworkLockFile = "/run/airlock/network.lock";

export async function withHostNetworkLock<T>(
  body: () => Promise<T>,
  file: string = defaultNetworkLockFile,
  timeoutMs = 15_000,
): Promise<T> {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  const until = Date.now() + timeoutMs;
  for (;;) {
    try {
      const fd = openSync(file, "wx", 0o600);
      writeSync(fd, String(process.pid));
      closeSync(fd);
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err;
      if (!ownerAlive(file)) {
        rmSync(file, { force: true });
        continue;
      }
      if (Date.now() > until) {
        throw new AirlockError("SANDBOX_UNAVAILABLE", `timed out waiting for the host network lock ${file}`, {
          hint: "another Airlock controller holds it; if none runs, remove the file",
        });
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  }
  try {
    return await body();
  } finally {
    try {
      if (readFileSync(file, "utf8") === String(process.pid)) rmSync(file, { force: true });
    } catch {
      // Already gone.
    }
  }
}

function ownerAlive(file: string): boolean {
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch {
    return false;
  }
  const pid = Number(text);
  if (!pid) {
    // Created but not yet written, or its writer died in between: give it a moment.
    try {
      return Date.now() - statSync(file).mtimeMs < 2_000;
    } catch {
      return false;
    }
  }
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
}
