/** The launcher on real cgroups and real processes (needs root). */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, rmdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { detectCgroups } from "./cgroups/detect.js";
import { backendFor, type CgroupBackend, type JobCgroup } from "./cgroups/index.js";
import { WRAPPER_PATH } from "./host.js";
import { Launcher } from "./launcher.js";

const layout = await detectCgroups();
const parent = `airlock-launcher-test-${process.pid}`;
const env = { PATH: WRAPPER_PATH };

async function output(l: Launcher): Promise<{ code: number | null; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  l.child.stdout?.on("data", (c: Buffer) => {
    stdout += c.toString();
  });
  l.child.stderr?.on("data", (c: Buffer) => {
    stderr += c.toString();
  });
  const { code } = await l.closed;
  return { code, stdout, stderr };
}

describe("step launcher", () => {
  let backend: CgroupBackend;
  let cg: JobCgroup;
  let dir: string;
  beforeAll(async () => {
    backend = backendFor(layout, parent);
    await backend.check();
    cg = await backend.create("job_launcher");
    dir = await mkdtemp(join(tmpdir(), "airlock-launcher-"));
  });
  afterAll(async () => {
    for (const name of await backend.list()) await backend.open(name).remove();
    await backend.removeParent();
    const mounts = layout.version === 2 ? [layout.mount] : [...new Set(Object.values(layout.mounts))];
    for (const m of mounts) await rmdir(join(m, parent)).catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });

  it("joins the cgroup before it execs, and passes every argument byte for byte (no shell evaluation)", async () => {
    const marker = join(dir, "evaluated");
    const args = ["a b", `$(touch ${marker})`, "'\"`", "line\nbreak", "*", "", "-x"];
    const l = new Launcher(env).join(cg.procsFiles);
    const child = l.launch(
      ["/bin/sh", "-c", 'printf "<%s>" "$@"; echo; cat /proc/self/cgroup', "argv0", ...args],
      new Map(),
    );
    child.stdin?.end();
    const r = await output(l);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(args.map((a) => `<${a}>`).join(""));
    expect(existsSync(marker)).toBe(false);
    // Every hierarchy the process is in names the job's cgroup.
    const lines = r.stdout.split("\n").filter((x) => /^\d+:/.test(x));
    const ours = lines.filter((x) => x.endsWith(`/${parent}/job_launcher`));
    expect(ours.length).toBe(cg.procsFiles.length);
    expect(l.statusText).toContain("ok");
  });

  it("refuses to run anything when it cannot join, and says why", async () => {
    const marker = join(dir, "ran");
    const l = new Launcher(env).join([join(dir, "no-such-cgroup", "cgroup.procs")]);
    l.launch(["/bin/sh", "-c", `touch ${marker}`], new Map()).stdin?.end();
    const r = await output(l);
    expect(r.code).toBe(125);
    expect(l.statusText).toMatch(/cannot join cgroup via .*no-such-cgroup/);
    expect(existsSync(marker)).toBe(false);
  });

  it("a retired launcher exits without running anything, and a waiting one stands", async () => {
    const l = new Launcher(env).join(cg.procsFiles);
    expect(l.standing).toBe(true);
    l.retire();
    expect(l.standing).toBe(false);
    expect((await l.closed).code).toBe(125);
    expect(await cg.pids()).toEqual([]);
  });

  it("feeds the data descriptors and closes the resolver pipe when the command has no use for it", async () => {
    const l = new Launcher(env).join(cg.procsFiles);
    l.launch(
      ["/bin/sh", "-c", "cat <&3; ls /proc/self/fd | sort -n | tr '\\n' ' '"],
      new Map([[3, "from-fd-3\n"]]),
    );
    const r = await output(l);
    const [data, list] = r.stdout.split("\n");
    expect(data).toBe("from-fd-3");
    const fds = (list ?? "").trim().split(" ").map(Number);
    expect(fds).toContain(3);
    // 4 (status), 9 (resolver) and 12 (seccomp filter), unused here, 10 and 11 (orders) are
    // closed before exec; ls's own directory descriptor takes the lowest free number.
    expect(fds.filter((fd) => fd >= 9)).toEqual([]);
  });

  it("keeps the optional descriptors it was fed, and only those", async () => {
    const l = new Launcher(env).join(cg.procsFiles);
    l.launch(
      ["/bin/bash", "-c", "cat <&12; echo; ls /proc/self/fd | sort -n | tr '\\n' ' '"],
      new Map([[12, "from-fd-12"]]),
    );
    const r = await output(l);
    const [data, list] = r.stdout.split("\n");
    expect(data).toBe("from-fd-12");
    const fds = (list ?? "").trim().split(" ").map(Number);
    expect(fds.filter((fd) => fd >= 9 && fd !== 12)).toEqual([]);
    expect(fds).toContain(12);
  });

  it("descriptors the controller inherited without close-on-exec never reach the command", async () => {
    // A controller started by a careless parent (here: bash, which leaves fd 200 open across exec)
    // holds descriptors it never opened; only the launcher's own 0-12 may reach what it execs.
    const script = join(dir, "inherit.mts");
    await writeFile(
      script,
      [
        'import { existsSync } from "node:fs";',
        `import { Launcher } from ${JSON.stringify(join(import.meta.dirname, "launcher.ts"))};`,
        'if (!existsSync("/proc/self/fd/200")) throw new Error("the controller did not inherit fd 200");',
        `const l = new Launcher(${JSON.stringify(env)}).join(${JSON.stringify(cg.procsFiles)});`,
        `l.launch(["/bin/sh", "-c", "ls /proc/self/fd | sort -n | tr '\\n' ' '"], new Map()).stdin?.end();`,
        "let out = '';",
        "l.child.stdout?.on('data', (c) => { out += c; });",
        "await l.closed;",
        "process.stdout.write(out);",
      ].join("\n"),
    );
    const child = spawn(
      "/bin/bash",
      ["-c", 'exec 200</dev/null; exec "$0" --import tsx "$1"', process.execPath, script],
      { cwd: join(import.meta.dirname, "../.."), stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout?.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.stderr?.on("data", (c: Buffer) => {
      err += c.toString();
    });
    const code = await new Promise((r) => child.on("close", r));
    expect(err).not.toContain("did not inherit");
    expect(code).toBe(0);
    const fds = out.trim().split(/\s+/).map(Number);
    expect(fds).toContain(2);
    expect(fds.filter((fd) => fd > 12)).toEqual([]);
  });
});
