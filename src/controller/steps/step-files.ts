import {
  closeSync,
  constants,
  fchownSync,
  fstatSync,
  lstatSync,
  openSync,
  readSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";

/** Where a step writes `name=value` lines for `steps.<id>.outputs`, as GITHUB_OUTPUT does. */
export const runnerDir = ".airlock-runner";

export function outputFileInSandbox(stepIdx: number): string {
  return `/workspace/${runnerDir}/output-${stepIdx}`;
}

const maxOutputBytes = 1024 * 1024;

/**
 * Reads a step's output file from the host side. The job owns the workspace and could plant a
 * symlink there, so the directory must be a real directory and the file is opened without
 * following links; nothing of the job runs between steps, so the checks cannot be raced.
 */
export function readStepOutputs(workspaceDir: string, stepIdx: number): Record<string, string> {
  const dir = join(workspaceDir, runnerDir);
  try {
    if (!lstatSync(dir).isDirectory()) return {};
  } catch {
    return {};
  }
  let fd: number;
  try {
    fd = openSync(
      join(dir, `output-${stepIdx}`),
      constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK,
    );
  } catch {
    return {};
  }
  try {
    if (!fstatSync(fd).isFile()) return {};
    const buf = Buffer.alloc(maxOutputBytes);
    const n = readSync(fd, buf, 0, maxOutputBytes, 0);
    return parseOutputs(buf.subarray(0, n).toString("utf8"));
  } finally {
    closeSync(fd);
  }
}

export function scriptFileInSandbox(stepIdx: number): string {
  return `/workspace/${runnerDir}/step-${stepIdx}`;
}

/**
 * Writes a step's script where the job can run it. Scripts go to a file, not argv: argv shows in
 * the host's process list, and an interpolated `${{ secrets.X }}` must not. The same rules as
 * for reading outputs apply: a real directory, no following links, nothing of the job running.
 */
export function writeStepScript(workspaceDir: string, stepIdx: number, script: string, uid: number): void {
  const dir = join(workspaceDir, runnerDir);
  const st = lstatSync(dir);
  if (!st.isDirectory()) throw new Error(`${runnerDir} in the workspace is not a directory`);
  const file = join(dir, `step-${stepIdx}`);
  rmSync(file, { force: true });
  const fd = openSync(
    file,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
    0o600,
  );
  try {
    writeSync(fd, script);
    fchownSync(fd, uid, uid);
  } finally {
    closeSync(fd);
  }
}

/** `name=value` lines and GitHub's heredoc form `name<<DELIM` … `DELIM`. */
export function parseOutputs(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] as string;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    if (heredoc) {
      const [, name, delim] = heredoc as unknown as [string, string, string];
      const body: string[] = [];
      for (i++; i < lines.length && lines[i] !== delim; i++) body.push(lines[i] as string);
      out[name.trim()] = body.join("\n");
      continue;
    }
    const eq = line.indexOf("=");
    if (eq > 0) out[line.slice(0, eq).trim()] = line.slice(eq + 1);
  }
  return out;
}
