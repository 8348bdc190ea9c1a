/**
 * Every test's scratch files go under one directory that is removed when the run ends, so a run
 * leaves nothing in /tmp even where a test forgets its own cleanup (or is killed mid-way). The
 * directory is world-traversable like /tmp: sandboxes run as other uids under paths tests make.
 */
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "airlock-tests-"));
  chmodSync(dir, 0o1777);
  const before = process.env.TMPDIR;
  // Forked test workers and every process they spawn inherit it; os.tmpdir() reads it per call.
  process.env.TMPDIR = dir;
  return () => {
    if (before === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = before;
    rmSync(dir, { recursive: true, force: true });
  };
}
