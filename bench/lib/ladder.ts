/**
 * The step launch path taken apart, to see where the driver's exec time goes beyond raw bwrap.
 * Each rung adds one piece of what src/sandbox/exec.ts does, and is timed spawn → the moment
 * `bash -eo pipefail -c 'date +%s%N'` inside the sandbox runs:
 *   1. bwrap with Airlock's own flags (buildBwrapArgs, via --args and data fds), as root
 *   2. setpriv (drop to the job uid, no_new_privs) → the same bwrap
 *   3. /bin/sh wrapper → setpriv → bwrap (the wrapper joins no cgroup here)
 *   4. the same wrapper joining a job cgroup first (every hierarchy, as exec() does)
 * The driver-only rows of start-overhead add the rest of exec() (oom counter read, Node glue).
 */
import { spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { buildBwrapArgs, encodeArgs, etcFiles, sandboxEnv } from "../../src/sandbox/bwrap-args.js";
import { ETC_FDS, WRAPPER } from "../../src/sandbox/exec.js";
import { probeRootEntries } from "../../src/sandbox/host.js";
import { nsToMs } from "./bwrap.js";
import { wallMs } from "./env.js";

const STEP = ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "date +%s%N"];

export type Rung = "airlock-flags" | "setpriv" | "sh-wrapper" | "sh-wrapper-cgroup";

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
    encodeArgs(
      buildBwrapArgs({
        hostname,
        workspaceDir,
        rootEntries,
        etcFds: ETC_FDS,
        env: sandboxEnv(hostname, {}),
        cwd: "/workspace",
      }),
    );
  const args: Record<Rung, Buffer> = {
    "airlock-flags": argsFor(rootWorkspace),
    setpriv: argsFor(jobWorkspace),
    "sh-wrapper": argsFor(jobWorkspace),
    "sh-wrapper-cgroup": argsFor(jobWorkspace),
  };
  const etc = etcFiles(hostname);
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
  const argv: Record<Rung, string[]> = {
    "airlock-flags": bwrap,
    setpriv: [...setpriv, ...bwrap],
    "sh-wrapper": ["/bin/sh", "-c", WRAPPER, "airlock-step", "0", ...setpriv, ...bwrap],
    "sh-wrapper-cgroup": [
      "/bin/sh",
      "-c",
      WRAPPER,
      "airlock-step",
      String(procsFiles.length),
      ...procsFiles,
      ...setpriv,
      ...bwrap,
    ],
  };

  return (rung: Rung): Promise<number> =>
    new Promise((resolve, reject) => {
      const [cmd, ...rest] = argv[rung] as [string, ...string[]];
      let out = "";
      const t0 = wallMs();
      const child = spawn(cmd, rest, {
        cwd: "/",
        detached: true,
        stdio: ["ignore", "pipe", "pipe", "pipe", "pipe", "pipe", "pipe", "pipe", "pipe"],
      });
      const feed = (fd: number, data: string | Buffer) => {
        const s = child.stdio[fd] as Writable;
        s.on("error", () => undefined);
        s.end(data);
      };
      feed(3, args[rung]);
      for (const [name, fd] of Object.entries(ETC_FDS)) feed(fd, etc[name as keyof typeof ETC_FDS]);
      (child.stdio[4] as Readable).resume();
      let err = "";
      child.stdout?.on("data", (c: Buffer) => {
        out += c.toString();
      });
      child.stderr?.on("data", (c: Buffer) => {
        err += c.toString();
      });
      child.on("error", reject);
      child.on("close", (code) => {
        const ns = out.trim();
        if (code !== 0 || !/^\d{19}$/.test(ns))
          reject(new Error(`${rung} exited ${code} printing ${JSON.stringify(out)}: ${err.trim()}`));
        else resolve(nsToMs(ns) - t0);
      });
    });
}
