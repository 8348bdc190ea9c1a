import { type ChildProcessWithoutNullStreams, spawn } from "node:child_process";
import { AirlockError } from "../errors.js";

export interface GitObject {
  oid: string;
  type: string;
  content: Buffer;
}

/**
 * Reads several objects through one `git cat-file --batch` process instead of one git process per
 * read: intake reads a tree listing and a workflow file, and each git start costs milliseconds
 * that every run pays before its first step.
 */
export class GitBatch {
  private buffer: Buffer = Buffer.alloc(0);
  private waiting: (() => void) | undefined;
  private failed: Error | undefined;

  private constructor(private readonly git: ChildProcessWithoutNullStreams) {
    git.stdout.on("data", (chunk: Buffer) => {
      this.buffer = this.buffer.length ? Buffer.concat([this.buffer, chunk]) : chunk;
      this.waiting?.();
    });
    const fail = (err: Error) => {
      this.failed = err;
      this.waiting?.();
    };
    git.on("error", fail);
    git.on("close", () => fail(new Error("git cat-file exited")));
  }

  static open(args: string[], env: NodeJS.ProcessEnv): GitBatch {
    return new GitBatch(
      spawn("git", [...args, "cat-file", "--batch"], { env, stdio: ["pipe", "pipe", "pipe"] }),
    );
  }

  /** The object named by `spec` (e.g. `SHA:path`), or null if it does not exist. */
  async read(spec: string): Promise<GitObject | null> {
    if (/[\n\r]/.test(spec))
      throw new AirlockError("REQUEST_INVALID", "object names may not contain newlines");
    this.git.stdin.write(`${spec}\n`);
    const header = (await this.take((b) => (b.indexOf(10) < 0 ? -1 : b.indexOf(10) + 1)))
      .toString("utf8")
      .trim();
    if (header.endsWith(" missing") || header.endsWith(" ambiguous")) return null;
    const [oid = "", type, size] = header.split(" ");
    const length = Number(size);
    if (!type || !Number.isInteger(length)) throw new Error(`unexpected git cat-file output: ${header}`);
    const body = await this.take((b) => (b.length >= length + 1 ? length + 1 : -1));
    return { oid, type, content: body.subarray(0, length) };
  }

  close(): void {
    this.git.stdin.end();
    this.git.kill();
  }

  /** Waits until `size(buffer)` says how many bytes make a complete piece, then takes them. */
  private async take(size: (b: Buffer) => number): Promise<Buffer> {
    for (;;) {
      const n = size(this.buffer);
      if (n >= 0) {
        const piece = this.buffer.subarray(0, n);
        this.buffer = this.buffer.subarray(n);
        return piece;
      }
      if (this.failed) throw this.failed;
      await new Promise<void>((resolve) => {
        this.waiting = resolve;
      });
      this.waiting = undefined;
    }
  }
}

/** Names of the entries of a tree object (`<mode> <name>\0<20-byte id>` repeated). */
export function treeEntryNames(tree: Buffer): { name: string; mode: string }[] {
  const out: { name: string; mode: string }[] = [];
  let i = 0;
  while (i < tree.length) {
    const space = tree.indexOf(32, i);
    const nul = tree.indexOf(0, space);
    if (space < 0 || nul < 0) break;
    out.push({
      mode: tree.subarray(i, space).toString(),
      name: tree.subarray(space + 1, nul).toString("utf8"),
    });
    i = nul + 21;
  }
  return out;
}
