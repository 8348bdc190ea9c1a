/**
 * The raw bubblewrap baseline: the same kind of namespaces and mounts a job gets, without the
 * controller, cgroups, uid drop or workspace. Spawned from this Node process exactly as the
 * sandbox driver spawns its steps, so Node's own spawn cost is on both sides.
 */
import { spawn } from "node:child_process";
import { probeRootEntries } from "../../src/sandbox/host.js";
import { wallMs } from "./env.js";

export const BWRAP = "/usr/bin/bwrap";

export async function rawBwrapArgs(): Promise<string[]> {
  const args = ["--unshare-all", "--die-with-parent", "--ro-bind", "/usr", "/usr"];
  for (const e of await probeRootEntries()) {
    if (e.kind === "symlink") args.push("--symlink", e.target, e.path);
    else args.push("--ro-bind", e.path, e.path);
  }
  args.push("--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--");
  return args;
}

/** spawn → exit of `bwrap … <argv>`, in ms; rejects on a non-zero exit. */
export function timeBwrap(prefix: string[], argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(BWRAP, [...prefix, ...argv], { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code, sig) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`bwrap ${argv.join(" ")} exited ${code ?? sig}`));
    });
  });
}

/**
 * spawn → the moment a shell inside bwrap printed `date +%s%N`, in ms: the same "step started"
 * moment the controller benchmark reads from the job's log, with the same bash flags.
 */
export function timeBwrapShellStart(prefix: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    let out = "";
    const t0 = wallMs();
    const child = spawn(
      BWRAP,
      [...prefix, "bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", "date +%s%N"],
      { stdio: ["ignore", "pipe", "ignore"] },
    );
    child.stdout.on("data", (c: Buffer) => {
      out += c.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const ns = out.trim();
      if (code !== 0 || !/^\d{19}$/.test(ns)) {
        reject(new Error(`bwrap shell exited ${code} printing ${JSON.stringify(out)}`));
        return;
      }
      resolve(nsToMs(ns) - t0);
    });
  });
}

/** A 19-digit `date +%s%N` reading as float ms, without losing the sub-ms digits. */
export function nsToMs(ns: string): number {
  return Number(ns.slice(0, -6)) + Number(ns.slice(-6)) / 1e6;
}
