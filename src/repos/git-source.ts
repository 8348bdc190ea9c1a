import { execFile, spawn } from "node:child_process";
import { statSync } from "node:fs";
import { PassThrough, type Readable } from "node:stream";
import { promisify } from "node:util";
import { AirlockError } from "../errors.js";
import { GitBatch, treeEntryNames } from "./git-batch.js";

const run = promisify(execFile);

/**
 * Read-only access to a registered repository's local git source. Git runs with the system and
 * global configs ignored and hooks disabled, so a repository cannot make the controller run code.
 */
function gitArgs(source: string, args: string[]): string[] {
  return [
    "-c",
    `safe.directory=*`,
    "-c",
    "core.hooksPath=/dev/null",
    "-c",
    "core.fsmonitor=false",
    "-C",
    source,
    ...args,
  ];
}

const gitEnv = {
  ...process.env,
  GIT_CONFIG_NOSYSTEM: "1",
  GIT_CONFIG_GLOBAL: "/dev/null",
  GIT_TERMINAL_PROMPT: "0",
};

async function git(source: string, args: string[]): Promise<string> {
  const { stdout } = await run("git", gitArgs(source, args), { env: gitEnv, maxBuffer: 64 * 1024 * 1024 });
  return stdout;
}

export function assertReadableSource(source: string): void {
  let isDir = false;
  try {
    isDir = statSync(source).isDirectory();
  } catch (cause) {
    throw new AirlockError(
      "REPO_UNAVAILABLE",
      `repository source ${source} cannot be read: ${(cause as Error).message}`,
      {
        hint: "register the path of a local git repository (a working copy or a bare repository)",
      },
    );
  }
  if (!isDir) throw new AirlockError("REPO_UNAVAILABLE", `repository source ${source} is not a directory`);
}

export async function assertGitRepository(source: string): Promise<void> {
  assertReadableSource(source);
  try {
    await git(source, ["rev-parse", "--git-dir"]);
  } catch {
    throw new AirlockError("REPO_UNAVAILABLE", `repository source ${source} is not a git repository`, {
      hint: "run `git init` and commit there, or point at an existing clone",
    });
  }
}

export type RefType = "branch" | "tag";

export interface ResolvedRef {
  /** Fully qualified: refs/heads/main or refs/tags/v1. */
  ref: string;
  refType: RefType;
  /** The short name: main or v1. */
  name: string;
  sha: string;
}

/** Resolves a branch or tag (short or fully qualified) to the commit it points at. */
export async function resolveRef(source: string, ref: string): Promise<ResolvedRef> {
  const git = GitSource.open(source);
  try {
    return await git.resolveRef(ref);
  } finally {
    git.close();
  }
}

/** Checks that sha is a commit reachable from ref, for requests that pin both. */
export async function assertCommitOnRef(source: string, sha: string, resolved: ResolvedRef): Promise<void> {
  if (!/^[0-9a-f]{40}$/.test(sha))
    throw new AirlockError("REF_NOT_FOUND", `"${sha}" is not a full commit sha`);
  try {
    await git(source, ["merge-base", "--is-ancestor", sha, resolved.sha]);
  } catch {
    throw new AirlockError("REF_NOT_FOUND", `commit ${sha} is not on ${resolved.ref} in ${source}`);
  }
}

export interface WorkflowSource {
  path: string;
  text: string;
}

const workflowDirs = [".airlock/workflows", ".github/workflows"];

/** The workflow to run at sha: `path` if given, else the only one under the workflow folders. */
export async function readWorkflowAt(source: string, sha: string, path?: string): Promise<WorkflowSource> {
  const git = GitSource.open(source);
  try {
    return await git.readWorkflow(sha, path);
  } finally {
    git.close();
  }
}

/**
 * One intake's view of a repository: ref resolution and workflow reads served by a single
 * `git cat-file --batch` process, since every git start costs milliseconds each run pays before
 * its first step.
 */
export class GitSource {
  private constructor(
    private readonly source: string,
    private readonly batch: GitBatch,
  ) {}

  static open(source: string): GitSource {
    assertReadableSource(source);
    return new GitSource(source, GitBatch.open(gitArgs(source, []), gitEnv));
  }

  async resolveRef(ref: string): Promise<ResolvedRef> {
    if (!/^[\w./-]+$/.test(ref) || ref.includes("..") || ref.startsWith("-")) {
      throw new AirlockError("REF_NOT_FOUND", `"${ref}" is not a valid ref name`);
    }
    const candidates = ref.startsWith("refs/") ? [ref] : [`refs/heads/${ref}`, `refs/tags/${ref}`];
    for (const candidate of candidates) {
      const commit = await this.batch.read(`${candidate}^{commit}`).catch((cause: unknown) => {
        throw new AirlockError("REPO_UNAVAILABLE", `cannot read the git repository ${this.source}`, {
          hint: "check that the registered source is still a git repository",
          cause,
        });
      });
      if (commit?.type !== "commit") continue;
      const refType: RefType = candidate.startsWith("refs/tags/") ? "tag" : "branch";
      return {
        ref: candidate,
        refType,
        name: candidate.replace(/^refs\/(heads|tags)\//, ""),
        sha: commit.oid,
      };
    }
    throw new AirlockError("REF_NOT_FOUND", `ref "${ref}" does not exist in ${this.source}`, {
      hint: "name an existing branch or tag (git branch -a / git tag)",
    });
  }

  /** `path` if given, else the only workflow under .airlock/workflows/ or .github/workflows/. */
  async readWorkflow(sha: string, path?: string): Promise<WorkflowSource> {
    const batch = this.batch;
    let file = path;
    if (!file) {
      const files: string[] = [];
      for (const dir of workflowDirs) {
        const tree = await batch.read(`${sha}:${dir}`);
        if (tree?.type !== "tree") continue;
        for (const e of treeEntryNames(tree.content)) {
          if (/\.ya?ml$/.test(e.name) && !e.mode.startsWith("4")) files.push(`${dir}/${e.name}`);
        }
      }
      files.sort();
      if (files.length === 0) {
        throw new AirlockError("WORKFLOW_INVALID", `no workflow at ${sha.slice(0, 12)}`, {
          hint: "add one under .airlock/workflows/ or .github/workflows/",
        });
      }
      if (files.length > 1) {
        throw new AirlockError(
          "REQUEST_INVALID",
          `${files.length} workflows at ${sha.slice(0, 12)}; name one: ${files.join(", ")}`,
          {
            hint: "pass --workflow PATH",
          },
        );
      }
      file = files[0] as string;
    }
    const blob = await batch.read(`${sha}:${file}`);
    if (blob?.type !== "blob") {
      throw new AirlockError("WORKFLOW_INVALID", `${file} does not exist at ${sha.slice(0, 12)}`, {
        hint: "workflows live in .airlock/workflows/ or .github/workflows/",
      });
    }
    return { path: file, text: blob.content.toString("utf8") };
  }

  close(): void {
    this.batch.close();
  }
}

export interface ArchiveStream {
  /** The tar stream; consume it, the producer waits on back-pressure. */
  tar: Readable;
  /** Resolves when git has finished; rejects with git's own message if it failed. */
  done: Promise<void>;
}

/** A tar stream of the tree at sha; the caller extracts it inside the job's sandbox. */
export function archive(source: string, sha: string): ArchiveStream {
  const git = spawn("git", gitArgs(source, ["archive", "--format=tar", sha]), {
    env: gitEnv,
    stdio: ["ignore", "pipe", "pipe"],
  });
  // Node drains (and drops) an unconsumed stdout when the child exits, so the output is taken
  // into a buffer of our own at once; git then pauses on back-pressure instead of losing data.
  const tar = (git.stdout as Readable).pipe(new PassThrough());
  let stderr = "";
  git.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  const done = new Promise<void>((resolve, reject) => {
    git.on("error", reject);
    git.on("close", (code) =>
      code === 0
        ? resolve()
        : reject(
            new AirlockError(
              "REPO_UNAVAILABLE",
              `git archive of ${sha} in ${source} failed: ${stderr.trim()}`,
            ),
          ),
    );
  });
  done.catch(() => undefined);
  return { tar, done };
}
