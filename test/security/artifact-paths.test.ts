/**
 * Attacks on the host side of a job's files: archives a job shapes (uploads), archives the CLI
 * unpacks on the operator's machine (downloads), files the controller reads back from the
 * workspace, and output the operator's terminal prints. Each test asserts the attack fails.
 */
import {
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { Readable } from "node:stream";
import tar from "tar-stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ingestTar } from "../../src/artifacts/archive.js";
import { extractArtifact } from "../../src/artifacts/extract.js";
import { ArtifactStore } from "../../src/artifacts/store.js";
import { LineAssembler } from "../../src/cli/log-lines.js";
import { terminalSafe } from "../../src/cli/terminal-text.js";
import { sinkFor } from "../../src/controller/steps/paths.js";
import { readStepOutputs, runnerDir } from "../../src/controller/steps/step-files.js";
import type { StepEnv } from "../../src/controller/steps/types.js";
import { Airlock, GitRepo, jobByKey, runIdOf } from "../e2e/cli-harness.js";

type Entry = {
  name: string;
  body?: string;
  type?: "file" | "symlink" | "directory" | "link" | "fifo" | "character-device";
  linkname?: string;
};

function tarOf(entries: Entry[]): Readable {
  const pack = tar.pack();
  for (const e of entries) {
    if (e.type && e.type !== "file") pack.entry({ name: e.name, type: e.type, linkname: e.linkname ?? "" });
    else pack.entry({ name: e.name }, e.body ?? "");
  }
  pack.finalize();
  return Readable.from(pack as AsyncIterable<Buffer>);
}

const limits = { maxBytes: 1 << 20, maxFiles: 100 };
const tmp = (p: string) => mkdtempSync(join(tmpdir(), `airlock-artpaths-${p}-`));

/** Every path under dir, links not followed. */
function tree(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const n of readdirSync(join(dir, rel))) {
      const p = rel ? `${rel}/${n}` : n;
      out.push(p);
      if (lstatSync(join(dir, p)).isDirectory()) walk(p);
    }
  };
  walk("");
  return out.sort();
}

describe("artifacts download (the CLI, on the operator's machine)", () => {
  it("refuses entries that climb out, absolute ones stay inside", async () => {
    const base = tmp("dl");
    const out = join(base, "out");
    for (const name of ["../evil", "a/../../evil", "./../evil"]) {
      await expect(extractArtifact(tarOf([{ name, body: "x" }]), out)).rejects.toMatchObject({
        code: "ARTIFACT_INVALID",
      });
    }
    await extractArtifact(tarOf([{ name: "/etc/airlock-evil", body: "x" }]), out);
    expect(existsSync("/etc/airlock-evil")).toBe(false);
    expect(readFileSync(join(out, "etc/airlock-evil"), "utf8")).toBe("x");
    expect(readdirSync(base)).toEqual(["out"]);
  });

  it("never writes through a symlink: one in the archive, or one an earlier download left", async () => {
    const base = tmp("dl-link");
    const out = join(base, "out");
    const victim = join(base, "victim");
    mkdirSync(victim);
    writeFileSync(join(victim, "bashrc"), "original");
    // Same archive: a link to outside, then a file through it.
    await expect(
      extractArtifact(
        tarOf([
          { name: "dir", type: "symlink", linkname: victim },
          { name: "dir/bashrc", body: "pwned" },
        ]),
        out,
      ),
    ).rejects.toMatchObject({ code: "ARTIFACT_INVALID" });
    expect(readFileSync(join(victim, "bashrc"), "utf8")).toBe("original");
    // A link already in --out (from anywhere): a file of the same name is not written through it.
    mkdirSync(out, { recursive: true });
    symlinkSync(join(victim, "bashrc"), join(out, "bashrc"));
    symlinkSync(victim, join(out, "sub"));
    await expect(extractArtifact(tarOf([{ name: "bashrc", body: "pwned" }]), out)).rejects.toMatchObject({
      code: "ARTIFACT_INVALID",
    });
    await expect(extractArtifact(tarOf([{ name: "sub/bashrc", body: "pwned" }]), out)).rejects.toMatchObject({
      code: "ARTIFACT_INVALID",
    });
    expect(readFileSync(join(victim, "bashrc"), "utf8")).toBe("original");
  });

  it("makes only symlinks that resolve inside --out, following the archive's own chains", async () => {
    const out = join(tmp("dl-chain"), "out");
    const escapes: Entry[][] = [
      [{ name: "shadow", type: "symlink", linkname: "/etc/shadow" }],
      [{ name: "root", type: "symlink", linkname: "/proc/self/root" }],
      [{ name: "up", type: "symlink", linkname: "../../.." }],
      // Lexically inside, really outside: x/y/up is outDir's parent's parent... via a chain.
      [
        { name: "x/y/file", body: "f" },
        { name: "x/y/up", type: "symlink", linkname: "../.." },
        { name: "esc", type: "symlink", linkname: "x/y/up/.." },
      ],
      // A link placed through another link.
      [
        { name: "p", type: "symlink", linkname: ".." },
        { name: "p/planted", type: "symlink", linkname: "x" },
      ],
      // A loop is refused, not followed forever.
      [
        { name: "l1", type: "symlink", linkname: "l2" },
        { name: "l2", type: "symlink", linkname: "l1/.." },
      ],
    ];
    for (const entries of escapes) {
      await expect(extractArtifact(tarOf(entries), out), JSON.stringify(entries)).rejects.toMatchObject({
        code: "ARTIFACT_INVALID",
      });
      expect(existsSync(out) ? tree(out) : [], JSON.stringify(entries)).toEqual(
        existsSync(out) ? tree(out).filter((p) => lstatSync(join(out, p)).isDirectory()) : [],
      );
    }
    expect(existsSync(join(dirname(out), "planted"))).toBe(false);
    // Ordinary relative links (node_modules/.bin style) still work.
    const ok = join(tmp("dl-ok"), "out");
    await extractArtifact(
      tarOf([
        { name: "pkg/bin/tool.js", body: "run" },
        { name: "pkg/.bin/tool", type: "symlink", linkname: "../bin/tool.js" },
      ]),
      ok,
    );
    expect(readlinkSync(join(ok, "pkg/.bin/tool"))).toBe("../bin/tool.js");
    expect(readFileSync(join(ok, "pkg/.bin/tool"), "utf8")).toBe("run");
  });

  it("ignores hard links, fifos and devices, and refuses names with control characters", async () => {
    const out = join(tmp("dl-types"), "out");
    const r = await extractArtifact(
      tarOf([
        { name: "hl", type: "link", linkname: "/etc/shadow" },
        { name: "fifo", type: "fifo" },
        { name: "dev", type: "character-device" },
        { name: "ok", body: "fine" },
      ]),
      out,
    );
    expect(r.files).toBe(1);
    expect(tree(out)).toEqual(["ok"]);
    await expect(extractArtifact(tarOf([{ name: "a\nb", body: "x" }]), out)).rejects.toMatchObject({
      code: "ARTIFACT_INVALID",
    });
    await expect(
      extractArtifact(tarOf([{ name: "\u001b]0;pwned\u0007", body: "x" }]), out),
    ).rejects.toMatchObject({ code: "ARTIFACT_INVALID" });
  });
});

describe("artifact ingest (the controller, from the job's tar)", () => {
  const store = () => new ArtifactStore(tmp("store"));

  it("refuses '..', control characters, over-long names, hard links, fifos and devices", async () => {
    const bad: Entry[][] = [
      [{ name: "../../etc/passwd", body: "x" }],
      [{ name: "a/../../b", body: "x" }],
      [{ name: "line\nbreak", body: "x" }],
      [{ name: "esc\u001b[2J", body: "x" }],
      [{ name: `${"n".repeat(300)}`, body: "x" }],
      [{ name: `${"d/".repeat(2100)}f`, body: "x" }],
      [{ name: "hard", type: "link", linkname: "/etc/shadow" }],
      [{ name: "pipe", type: "fifo" }],
      [{ name: "tty", type: "character-device" }],
      [{ name: "l", type: "symlink", linkname: "a\nb" }],
    ];
    for (const entries of bad) {
      await expect(
        ingestTar(store(), tarOf(entries), limits),
        JSON.stringify(entries).slice(0, 80),
      ).rejects.toMatchObject({
        code: "ARTIFACT_INVALID",
      });
    }
  });

  it("symlinks are recorded, never followed, and count against the file limit", async () => {
    const { manifest } = await ingestTar(
      store(),
      tarOf([
        { name: "shadow", type: "symlink", linkname: "/etc/shadow" },
        { name: "root", type: "symlink", linkname: "/proc/self/root" },
      ]),
      limits,
    );
    expect(manifest.files).toEqual([
      { path: "root", type: "symlink", target: "/proc/self/root" },
      { path: "shadow", type: "symlink", target: "/etc/shadow" },
    ]);
    const many = Array.from({ length: 150 }, (_, i) => ({
      name: `l${i}`,
      type: "symlink" as const,
      linkname: "x",
    }));
    await expect(ingestTar(store(), tarOf(many), limits)).rejects.toMatchObject({ code: "ARTIFACT_INVALID" });
    const dirs = Array.from({ length: 250 }, (_, i) => ({ name: `d${i}/`, type: "directory" as const }));
    await expect(ingestTar(store(), tarOf(dirs), limits)).rejects.toMatchObject({ code: "ARTIFACT_INVALID" });
  });

  it("an archive bomb stops at the byte limit", async () => {
    const pack = tar.pack();
    for (let i = 0; i < 4; i++) pack.entry({ name: `zero${i}` }, Buffer.alloc(512 * 1024));
    pack.finalize();
    // Packed up front, as the upload step reads its spool file: the bomb is bytes, not a live packer.
    const chunks: Buffer[] = [];
    for await (const c of pack as AsyncIterable<Buffer>) chunks.push(c);
    const bytes = Buffer.concat(chunks);
    await expect(ingestTar(store(), Readable.from([bytes]), limits)).rejects.toMatchObject({
      code: "ARTIFACT_INVALID",
    });
  });
});

describe("$GITHUB_OUTPUT read back by the controller", () => {
  const ws = () => {
    const dir = tmp("ws");
    mkdirSync(join(dir, runnerDir));
    return dir;
  };

  it("a symlink, a fifo, a directory or a huge file in its place yields nothing or a bounded read", async () => {
    const a = ws();
    symlinkSync("/etc/shadow", join(a, runnerDir, "output-0"));
    expect(readStepOutputs(a, 0)).toEqual({});
    const b = ws();
    const { execFileSync } = await import("node:child_process");
    execFileSync("mkfifo", [join(b, runnerDir, "output-0")]);
    const t = Date.now();
    expect(readStepOutputs(b, 0)).toEqual({});
    expect(Date.now() - t).toBeLessThan(1000);
    const c = ws();
    mkdirSync(join(c, runnerDir, "output-0"));
    expect(readStepOutputs(c, 0)).toEqual({});
    const d = ws();
    writeFileSync(join(d, runnerDir, "output-0"), `big=${"x".repeat(3 * 1024 * 1024)}\n`);
    expect(readStepOutputs(d, 0).big?.length).toBeLessThanOrEqual(1024 * 1024);
    const e = ws();
    execFileSync("truncate", ["-s", "1T", join(e, runnerDir, "output-0")]);
    expect(Object.keys(readStepOutputs(e, 0))).toEqual([]);
  });
});

describe("job output on its way to storage and to the operator's terminal", () => {
  it("a job's log is capped: past the cap output is dropped, said once, and not buffered", () => {
    const stored: { stream: string; bytes: number; text: string }[] = [];
    const logs = {
      write: (_idx: number, stream: string, chunk: Buffer | string) =>
        stored.push({ stream, bytes: Buffer.byteLength(chunk), text: chunk.toString().slice(0, 200) }),
    };
    const s = { logs, stepIdx: 0 } as unknown as StepEnv;
    const cap = 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, "y");
    // Two steps of the same job share the cap.
    for (const idx of [0, 1]) {
      const sink = sinkFor({ ...s, stepIdx: idx } as StepEnv, cap);
      for (let i = 0; i < 200; i++) sink.write("stdout", chunk);
    }
    const kept = stored.filter((x) => x.stream === "stdout").reduce((n, x) => n + x.bytes, 0);
    expect(kept).toBe(cap);
    expect(stored.filter((x) => x.stream === "system")).toHaveLength(1);
    expect(stored.find((x) => x.stream === "system")?.text).toMatch(/Log truncated/);
  });

  it("escape sequences, C1 controls and bidi overrides are shown, not interpreted", () => {
    const attacks = [
      "\u001b]0;owned\u0007", // window title
      "\u001b[2J\u001b[H", // clear screen
      "\u001b]52;c;cHduZWQ=\u0007", // clipboard
      "\u001b]8;;https://evil.example\u001b\\click\u001b]8;;\u001b\\", // hyperlink
      "\u009b31m", // 8-bit CSI
      "ok\rFAKE", // overwrite the start of the line
      "\u202eexe.txt", // right-to-left override
      "\u0008\u0008\u0008", // backspaces
    ];
    for (const a of attacks) {
      const shown = terminalSafe(a);
      // biome-ignore lint/suspicious/noControlCharactersInRegex: asserting none survive.
      expect(shown).not.toMatch(/[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    }
    expect(terminalSafe("\u001b[31mred")).toBe("\\x1b[31mred");
    expect(terminalSafe("tab\tand CRLF\r")).toBe("tab\tand CRLF");
    expect(terminalSafe("invalid \ufffd utf-8 stays")).toBe("invalid \ufffd utf-8 stays");
  });

  it("an endless line is printed in bounded pieces", () => {
    const lines = new LineAssembler(1024);
    const chunk = {
      seq: 1,
      jobId: "job_x",
      stepIdx: 0,
      stream: "stdout" as const,
      data: "z".repeat(10_000),
      at: "",
    };
    const out = lines.push(chunk);
    expect(out.every((l) => l.text.length <= 1024)).toBe(true);
    expect(out.reduce((n, l) => n + l.text.length, 0) + (lines.rest()[0]?.text.length ?? 0)).toBe(10_000);
  });
});

describe("end to end: a hostile job's uploads, checkout and logs", () => {
  let airlock: Airlock;
  let repo: GitRepo;
  const repoName = "e2e-artpaths/app";
  const workflow = (steps: string) => `on: push
jobs:
  j:
    runs-on: airlock
    steps:
${steps}`;

  beforeAll(async () => {
    airlock = Airlock.create("artifact-paths", {
      config: { sandbox: { uidBase: 530_000, uidCount: 32 }, network: { pool: "10.251.0.0/16" } },
    });
    repo = GitRepo.create("artifact-paths", {
      "README.md": "hi\n",
      ".airlock/workflows/links.yml": workflow(`      - uses: actions/checkout@v4
      - run: |
          cat escape-etc/passwd > /dev/null 2>&1 && echo "followed: $(head -c 20 escape-shadow 2>&1)"
          mkfifo out-fifo/pipe
          printf 'ANSI:\\033]0;pwned\\007\\033[2J done\\n'
          head -c 3000000 /dev/zero | tr '\\0' 'L'; echo
      - uses: actions/upload-artifact@v4
        with:
          name: links
          path: |
            escape-etc
            escape-shadow
            escape-root
      - uses: actions/upload-artifact@v4
        with: { name: fifo, path: out-fifo }
        continue-on-error: true
`),
      ".airlock/workflows/climb.yml": workflow(`      - uses: actions/upload-artifact@v4
        with: { name: climb, path: ../../etc }
`),
    });
    mkdirSync(join(repo.dir, "out-fifo"));
    writeFileSync(join(repo.dir, "out-fifo/.keep"), "");
    symlinkSync("/etc", join(repo.dir, "escape-etc"));
    symlinkSync("/etc/shadow", join(repo.dir, "escape-shadow"));
    symlinkSync("/proc/self/root", join(repo.dir, "escape-root"));
    repo.commit({}, "links");
    const r = await airlock.cli("repo", "add", repoName, "--source", repo.dir);
    expect(r.status, r.stderr).toBe(0);
  }, 120_000);

  afterAll(() => {
    airlock?.cleanup();
    repo?.cleanup();
  });

  const run = async (wf: string) => {
    const r = await airlock.cli("run", repoName, "--workflow", wf, "--event", "push");
    if (!/^run run_/m.test(r.stdout)) throw new Error(`airlock run: ${r.stdout}\n${r.stderr}`);
    return { ...r, run: await airlock.run(runIdOf(r.stdout)) };
  };

  it("checked-out symlinks resolve only in the sandbox; uploads keep them as links; downloads stay inside --out", async () => {
    const r = await run(".airlock/workflows/links.yml");
    const job = jobByKey(r.run, "j");
    const logs = await airlock.logs(job.id);
    // The job saw its own /etc through the link, never the host's shadow file.
    expect(logs).not.toMatch(/followed: root:/);
    // The terminal attack is printed as text.
    expect(logs).toContain("\\x1b]0;pwned\\x07");
    expect(logs).not.toContain("\u001b]0;pwned");
    // The long line arrives, in pieces, intact.
    expect(logs.replace(/[^L]/g, "").length).toBe(3_000_000);
    const arts = await airlock.artifacts(r.run.id);
    expect(
      arts.map((a) => a.name),
      logs.slice(-3000),
    ).toEqual(["links"]);
    const out = join(mkdtempSync(join(tmpdir(), "airlock-artpaths-cli-")), "out");
    const dl = await airlock.cli("artifacts", "download", arts[0]?.id as string, "--out", out);
    // Every link in this artifact points out of --out: the CLI refuses it and writes nothing.
    expect(dl.status).not.toBe(0);
    expect(dl.stderr).toMatch(/outside the download/);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
    const fifoStep = (await airlock.job(job.id)).steps?.[3];
    expect(fifoStep?.state).toBe("failed");
    // Nothing of the host's /etc was stored.
    const blobs = airlock.query<{ manifest: string }>("SELECT manifest FROM artifacts");
    expect(JSON.stringify(blobs)).not.toMatch(/root:/);
  }, 120_000);

  it("upload-artifact with a path that climbs out is refused before anything runs", async () => {
    const r = await run(".airlock/workflows/climb.yml");
    const job = jobByKey(r.run, "j");
    expect(job.conclusion).toBe("failed");
    expect(await airlock.logs(job.id)).toMatch(/outside the workspace/);
    expect(await airlock.artifacts(r.run.id)).toEqual([]);
  }, 120_000);

  it("the data dir stays where it is (resolve check for the harness)", () => {
    expect(resolve(airlock.dataDir)).toBe(airlock.dataDir);
  });
});
