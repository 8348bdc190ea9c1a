/** Checks that fail fast with a message naming what is missing and how to fix it. */
import { spawn } from "node:child_process";
import { access, constants, readFile } from "node:fs/promises";
import type { Writable } from "node:stream";
import { AirlockError } from "../errors.js";
import type { CgroupBackend } from "./cgroups/index.js";
import { BASH, BWRAP, probeRootEntries, SETPRIV, WRAPPER_PATH } from "./host.js";
import { jobSeccompFilter } from "./seccomp/index.js";

const unavailable = (message: string, hint: string, details?: Record<string, unknown>) =>
  new AirlockError("SANDBOX_UNAVAILABLE", message, { hint, details });

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

async function sysctl(path: string): Promise<number | undefined> {
  try {
    return Number((await readFile(path, "utf8")).trim());
  } catch {
    return undefined;
  }
}

export async function checkUserNamespaces(): Promise<void> {
  if ((await sysctl("/proc/sys/user/max_user_namespaces")) === 0) {
    throw unavailable(
      "user namespaces are disabled (sysctl user.max_user_namespaces = 0)",
      "run `sysctl -w user.max_user_namespaces=15000` and persist it in /etc/sysctl.d/",
    );
  }
  if ((await sysctl("/proc/sys/kernel/unprivileged_userns_clone")) === 0) {
    throw unavailable(
      "unprivileged user namespaces are disabled (sysctl kernel.unprivileged_userns_clone = 0)",
      "run `sysctl -w kernel.unprivileged_userns_clone=1` and persist it in /etc/sysctl.d/",
    );
  }
  if ((await sysctl("/proc/sys/kernel/apparmor_restrict_unprivileged_userns")) === 1) {
    throw unavailable(
      "AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns = 1)",
      "install an AppArmor profile that allows userns for /usr/bin/bwrap, or run `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`",
    );
  }
}

/**
 * Actually start a tiny sandbox as `nobody`, under the jobs' seccomp filter: the sysctls above are
 * not the only way to forbid it, and a kernel without seccomp filters (or a bwrap without
 * --seccomp) must stop the runner here rather than fail every job.
 */
async function probeBwrap(): Promise<void> {
  const filter = jobSeccompFilter();
  const args = [
    "--seccomp",
    "3",
    "--unshare-user",
    "--unshare-pid",
    "--unshare-net",
    "--disable-userns",
    "--ro-bind",
    "/usr",
    "/usr",
  ];
  for (const e of await probeRootEntries()) {
    if (e.kind === "symlink") args.push("--symlink", e.target, e.path);
    else args.push("--ro-bind", e.path, e.path);
  }
  args.push("--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true");
  const argv = ["--reuid", "65534", "--regid", "65534", "--clear-groups", "--no-new-privs", BWRAP, ...args];
  const { code, stderr } = await new Promise<{ code: number | null; stderr: string }>((res, rej) => {
    const child = spawn(SETPRIV, argv, {
      env: { PATH: WRAPPER_PATH },
      stdio: ["ignore", "ignore", "pipe", "pipe"],
    });
    const filterPipe = child.stdio[3] as Writable;
    filterPipe.on("error", () => undefined);
    filterPipe.end(filter);
    let err = "";
    child.stderr?.on("data", (c: Buffer) => {
      err += c.toString();
    });
    child.on("error", rej);
    child.on("close", (c) => res({ code: c, stderr: err.trim() }));
  });
  if (code !== 0) {
    throw unavailable(
      `bubblewrap cannot create an unprivileged sandbox: ${stderr || `exit code ${code}`}`,
      "check that unprivileged user namespaces are allowed (sysctl user.max_user_namespaces, kernel.unprivileged_userns_clone), that no LSM blocks bwrap, and that the kernel has CONFIG_SECCOMP_FILTER",
      { stderr },
    );
  }
}

export async function preflight(cgroups: () => Promise<CgroupBackend>): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw unavailable(
      "the sandbox driver must run as root (it switches each job to its own uid and manages cgroups)",
      "run the Airlock runner as root, e.g. from its systemd unit",
    );
  }
  if (!(await isExecutable(BWRAP))) {
    throw unavailable(
      "bubblewrap (bwrap) is not installed; run scripts/setup.sh or apt-get install bubblewrap",
      "apt-get install bubblewrap",
    );
  }
  if (!(await isExecutable(SETPRIV))) {
    throw unavailable("setpriv is not installed; apt-get install util-linux", "apt-get install util-linux");
  }
  if (!(await isExecutable(BASH))) {
    throw unavailable(`step launchers need ${BASH}; apt-get install bash`, "apt-get install bash");
  }
  await checkUserNamespaces();
  await (await cgroups()).check();
  await probeBwrap();
}
