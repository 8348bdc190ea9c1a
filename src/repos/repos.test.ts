import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { assertCommitOnRef, readWorkflowAt, resolveRef } from "./git-source.js";
import { isProtectedRef } from "./protected-refs.js";

let repo: string;
let first: string;

function git(...args: string[]): string {
  return execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@t.invalid", ...args], {
    encoding: "utf8",
  }).trim();
}

beforeAll(() => {
  repo = mkdtempSync(join(tmpdir(), "airlock-git-"));
  git("init", "-q", "-b", "main");
  writeFileSync(join(repo, "a.txt"), "one");
  git("add", "-A");
  git("commit", "-q", "-m", "one");
  first = git("rev-parse", "HEAD");
  execFileSync("mkdir", ["-p", join(repo, ".airlock/workflows")]);
  writeFileSync(join(repo, ".airlock/workflows/ci.yml"), "on: push\n");
  git("add", "-A");
  git("commit", "-q", "-m", "two");
  git("tag", "v1.0.0");
  git("branch", "feature/x", first);
});

describe("git source", () => {
  it("resolves branches and tags, short and qualified", async () => {
    expect(await resolveRef(repo, "main")).toMatchObject({
      ref: "refs/heads/main",
      refType: "branch",
      name: "main",
    });
    expect(await resolveRef(repo, "v1.0.0")).toMatchObject({ ref: "refs/tags/v1.0.0", refType: "tag" });
    expect((await resolveRef(repo, "refs/heads/feature/x")).sha).toBe(first);
  });

  it("names a ref that does not exist and refuses option-like refs", async () => {
    await expect(resolveRef(repo, "nope")).rejects.toThrow(/ref "nope" does not exist/);
    await expect(resolveRef(repo, "--upload-pack=evil")).rejects.toThrow(/not a valid ref/);
    await expect(resolveRef(join(repo, "missing"), "main")).rejects.toThrow(/cannot be read/);
  });

  it("checks that a pinned sha is on the ref", async () => {
    const main = await resolveRef(repo, "main");
    await expect(assertCommitOnRef(repo, first, main)).resolves.toBeUndefined();
    const feature = await resolveRef(repo, "feature/x");
    await expect(assertCommitOnRef(repo, main.sha, feature)).rejects.toThrow(
      /is not on refs\/heads\/feature\/x/,
    );
  });

  it("reads files and lists workflows at a commit, not the working tree", async () => {
    const main = await resolveRef(repo, "main");
    expect(await readWorkflowAt(repo, main.sha)).toEqual({
      path: ".airlock/workflows/ci.yml",
      text: "on: push\n",
    });
    await expect(readWorkflowAt(repo, first)).rejects.toThrow(/no workflow at/);
    expect(await readWorkflowAt(repo, main.sha, "a.txt")).toEqual({ path: "a.txt", text: "one" });
    await expect(readWorkflowAt(repo, first, ".airlock/workflows/ci.yml")).rejects.toThrow(/does not exist/);
    await expect(readWorkflowAt(repo, main.sha, ".airlock/workflows")).rejects.toThrow(/does not exist/);
  });

  it("asks which workflow when there are several", async () => {
    writeFileSync(join(repo, ".airlock/workflows/release.yaml"), "on: push\n");
    execFileSync("mkdir", ["-p", join(repo, ".github/workflows")]);
    writeFileSync(join(repo, ".github/workflows/gh.yml"), "on: push\n");
    writeFileSync(join(repo, ".github/workflows/notes.txt"), "not a workflow");
    git("add", "-A");
    git("commit", "-q", "-m", "three");
    const head = git("rev-parse", "HEAD");
    await expect(readWorkflowAt(repo, head)).rejects.toThrow(
      "3 workflows at " +
        head.slice(0, 12) +
        "; name one: .airlock/workflows/ci.yml, .airlock/workflows/release.yaml, .github/workflows/gh.yml",
    );
  });
});

describe("protected refs", () => {
  const rules = { branches: ["main", "release/*"], tags: ["v*"] };
  it("matches by kind and pattern", () => {
    expect(isProtectedRef(rules, "branch", "main")).toBe(true);
    expect(isProtectedRef(rules, "branch", "release/1.2")).toBe(true);
    expect(isProtectedRef(rules, "branch", "release/1.2/hotfix")).toBe(false);
    expect(isProtectedRef(rules, "branch", "mainline")).toBe(false);
    expect(isProtectedRef(rules, "tag", "v1.0.0")).toBe(true);
    expect(isProtectedRef(rules, "tag", "main")).toBe(false);
    expect(isProtectedRef({ branches: [], tags: [] }, "branch", "main")).toBe(false);
  });
});
