/**
 * The step launch path taken apart, to see where the driver's exec time goes beyond raw bwrap.
 * Each rung adds one piece of what src/sandbox/exec.ts does, and is timed spawn → the moment
 * `bash -eo pipefail -c 'date +%s%N'` inside the sandbox runs:
 *   1. bwrap with Airlock's own flags (buildBwrapArgs, via --args and data fds), as root
 *   2. setpriv (drop to the job uid, no_new_privs) → the same bwrap
 *   3. a launcher spawned on the spot: bash joins the job cgroup (every hierarchy), then execs
 *      setpriv → bwrap (what a step takes when no launcher was made ready for it)
 *   4. a launcher made ready beforehand (spawned, joined, waiting), timed from launch()
 * The driver-only rows of start-overhead add the rest of exec() (oom counter read, Node glue).
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Writable } from "node:stream";
import { buildBwrapArgs, sandboxEnv } from "../../src/sandbox/bwrap-args.js";
import { stepCommand, stepFeeds } from "../../src/sandbox/exec.js";
import { probeRootEntries, WRAPPER_PATH } from "../../src/sandbox/host.js";
import { ETC_FDS, FD_SECCOMP, Launcher } from "../../src/sandbox/launcher.js";
import { jobSeccompFilter } from "../../src/sandbox/seccomp/index.js";
import { nsToMs } from "./bwrap.js";
import { wallMs } from "./env.js";

const STEP = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "date +%s%N"];

export type Rung = "airlock-flags" | "setpriv" | "launcher" | "launcher-standby";

/**
 * `rootWorkspace` is root-owned (rung 1 runs bwrap as root, mapped to the sandbox uid, so a
 * workspace owned by the job uid would be out of its reach); `jobWorkspace` is owned by `uid`.
 */
export async function ladder(
  rootWorkspace: string,
  jobWorkspace: string,
  uid: number,
  procsFiles: readonly string[],
) {
  const rootEntries = await probeRootEntries();
  const hostname = "job_bench";
  const argsFor = (workspaceDir: string) =>
    buildBwrapArgs({
      hostname,
      workspaceDir,
      rootEntries,
      etcFds: ETC_FDS,
      env: sandboxEnv(hostname, {}),
      cwd: "/workspace",
      seccompFd: FD_SECCOMP,
    });
  const args: Record<Rung, string[]> = {
    "airlock-flags": argsFor(rootWorkspace),
    setpriv: argsFor(jobWorkspace),
    launcher: argsFor(jobWorkspace),
    "launcher-standby": argsFor(jobWorkspace),
  };
  const bwrap = ["/usr/bin/bwrap", "--args", "3", "--", ...STEP];
  const setpriv = [
    "/usr/bin/setpriv",
    "--reuid",
    String(uid),
    "--regid",
    String(uid),
    "--clear-groups",
    "--no-new-privs",
  ];
  const argv: Record<"airlock-flags" | "setpriv", string[]> = {
    "airlock-flags": bwrap,
    setpriv: [...setpriv, ...bwrap],
  };
  // As a real step: the seccomp filter rides along on its fd.
  const feeds = (rung: Rung) => stepFeeds(args[rung], hostname, undefined, jobSeccompFilter());
  const env = { PATH: WRAPPER_PATH };
  const readyLauncher = async () => {
    const l = new Launcher(env).join(procsFiles);
    for (let i = 0; i < 500 && !l.statusText.includes("ok"); i++) await new Promise((r) => setTimeout(r, 2));
    return l;
  };
  const stepOutput = (child: ChildProcess, rung: Rung, t0: number, closed?: Promise<unknown>) =>
    new Promise<number>((resolve, reject) => {
      let out = "";
      let err = "";
      child.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr?.on("data", (c: Buffer) => {
        err += c.toString();
      });
      const done = (code: number | null) => {
        const ns = out.trim();
        if (code !== 0 || !/^\d{19}$/.test(ns))
          reject(new Error(`${rung} exited ${code} printing ${JSON.stringify(out)}: ${err.trim()}`));
        else resolve(nsToMs(ns) - t0);
      };
      if (closed) closed.then((r) => done((r as { code: number | null }).code), reject);
      else {
        child.on("error", reject);
        child.on("close", done);
      }
    });

  return async (rung: Rung): Promise<number> => {
    if (rung === "launcher" || rung === "launcher-standby") {
      const ready = rung === "launcher-standby" ? await readyLauncher() : undefined;
      const t0 = wallMs();
      const l = ready ?? new Launcher(env).join(procsFiles);
      const child = l.launch(stepCommand(uid, STEP), feeds(rung));
      child.stdin?.end();
      return stepOutput(child, rung, t0, l.closed);
    }
    const [cmd, ...rest] = argv[rung] as [string, ...string[]];
    const t0 = wallMs();
    const child = spawn(cmd, rest, {
      cwd: "/",
      detached: true,
      stdio: Array.from({ length: FD_SECCOMP + 1 }, (_, fd) => (fd === 0 ? "ignore" : "pipe")),
    });
    for (const [fd, data] of feeds(rung)) {
      const s = child.stdio[fd] as Writable;
      s.on("error", () => undefined);
      s.end(data);
    }
    return stepOutput(child, rung, t0);
  };
}
