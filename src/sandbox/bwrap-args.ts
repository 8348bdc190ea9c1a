/**
 * Pure builder for the bubblewrap command line. All options travel through `--args FD` so the
 * job's environment (which may hold secrets) never shows up in the host's /proc/<pid>/cmdline;
 * only the step argv does, after `--`.
 */
import { AirlockError } from "../errors.js";

/** uid/gid of "runner" inside every sandbox. */
export const SANDBOX_UID = 1001;
export const WORKSPACE = "/workspace";
export const SANDBOX_HOME = "/workspace/.home";
export const DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/** Host /etc entries that programs need and that hold nothing secret; bound read-only if present. */
export const ETC_BINDS = [
  "/etc/alternatives",
  "/etc/ssl",
  "/etc/ca-certificates",
  "/etc/ld.so.cache",
  "/etc/localtime",
  "/etc/nsswitch.conf",
] as const;

/** Top-level paths that are merged-/usr symlinks on most hosts and real directories on some. */
export const ROOT_ENTRY_PATHS = ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] as const;

export type RootEntry = { path: string; kind: "symlink"; target: string } | { path: string; kind: "dir" };

/** File descriptors (in the bwrap process) carrying the synthesized /etc files. */
export interface EtcFds {
  passwd: number;
  group: number;
  hosts: number;
  hostname: number;
}

export interface BwrapArgsInput {
  hostname: string;
  workspaceDir: string;
  /** How the host lays out /bin, /lib…; probed by the driver so this stays pure. */
  rootEntries: RootEntry[];
  etcFds: EtcFds;
  env: Record<string, string>;
  cwd: string;
  /** fd carrying /etc/resolv.conf when the step joins a job network; absent: loopback-only net. */
  resolvFd?: number;
  /**
   * fd carrying the compiled seccomp filter (./seccomp/), which bwrap installs just before it
   * execs the step. Every step of a job passes one; only benchmarks of bare bwrap leave it out.
   */
  seccompFd?: number;
  /**
   * Size cap of the private /tmp. Its pages count against the job's memory limit anyway; the cap
   * makes a full /tmp fail a write with ENOSPC instead of OOM-killing the step.
   */
  tmpBytes?: number;
}

function invalid(message: string, hint: string): never {
  throw new AirlockError("SANDBOX_FAILED", message, { hint });
}

// A NUL would split one value into several bwrap options (e.g. smuggle `--bind / /host`).
function assertNoNul(what: string, s: string): void {
  if (s.includes("\0"))
    invalid(`${what} contains a NUL byte`, "remove NUL bytes from step arguments and env");
}

const ENV_NAME = /^[^=\0]+$/;

export function assertArgv(argv: string[]): void {
  if (argv.length === 0 || argv[0] === "")
    invalid("exec argv is empty", "pass the program to run as argv[0]");
  for (const a of argv) assertNoNul("exec argv", a);
}

/** The synthesized /etc: just enough for `id`, `whoami`, `hostname` and localhost lookups. */
export function etcFiles(hostname: string): Record<keyof EtcFds, string> {
  const u = SANDBOX_UID;
  return {
    passwd: [
      "root:x:0:0:root:/root:/usr/sbin/nologin",
      `runner:x:${u}:${u}:runner:${SANDBOX_HOME}:/bin/sh`,
      "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin",
      "",
    ].join("\n"),
    group: ["root:x:0:", `runner:x:${u}:`, "nogroup:x:65534:", ""].join("\n"),
    hosts: [
      `127.0.0.1\tlocalhost ${hostname}`,
      `::1\tlocalhost ip6-localhost ip6-loopback ${hostname}`,
      "",
    ].join("\n"),
    hostname: `${hostname}\n`,
  };
}

/** Defaults a shell expects; the step's env wins on conflicts. */
export function sandboxEnv(hostname: string, env: Record<string, string>): Record<string, string> {
  return {
    PATH: DEFAULT_PATH,
    HOME: SANDBOX_HOME,
    USER: "runner",
    LOGNAME: "runner",
    HOSTNAME: hostname,
    LANG: "C.UTF-8",
    ...env,
  };
}

export function buildBwrapArgs(input: BwrapArgsInput): string[] {
  const { etcFds } = input;
  if (!input.cwd.startsWith("/"))
    invalid(`cwd ${JSON.stringify(input.cwd)} is not absolute`, "use /workspace/…");
  assertNoNul("cwd", input.cwd);
  const args: string[] = [
    // Namespaces: everything; the network too unless the wrapper already entered the job's own
    // network namespace. No nested user namespaces.
    "--unshare-user",
    "--unshare-pid",
    "--unshare-ipc",
    "--unshare-uts",
    ...(input.resolvFd === undefined ? ["--unshare-net"] : []),
    "--unshare-cgroup",
    "--disable-userns",
    "--uid",
    String(SANDBOX_UID),
    "--gid",
    String(SANDBOX_UID),
    "--hostname",
    input.hostname,
    "--cap-drop",
    "ALL",
    "--die-with-parent",
    // setsid: the step cannot push keystrokes into a controlling terminal (TIOCSTI).
    "--new-session",
    ...(input.seccompFd === undefined ? [] : ["--seccomp", String(input.seccompFd)]),
    // Filesystem: read-only /usr and its top-level aliases; nothing else from the host.
    "--ro-bind",
    "/usr",
    "/usr",
  ];
  for (const e of input.rootEntries) {
    if (e.kind === "symlink") args.push("--symlink", e.target, e.path);
    else args.push("--ro-bind", e.path, e.path);
  }
  args.push("--proc", "/proc", "--dev", "/dev");
  if (input.tmpBytes !== undefined) args.push("--size", String(input.tmpBytes));
  args.push("--tmpfs", "/tmp", "--perms", "0755", "--dir", "/etc");
  const data: [number, string][] = [
    [etcFds.passwd, "/etc/passwd"],
    [etcFds.group, "/etc/group"],
    [etcFds.hosts, "/etc/hosts"],
    [etcFds.hostname, "/etc/hostname"],
  ];
  if (input.resolvFd !== undefined) data.push([input.resolvFd, "/etc/resolv.conf"]);
  for (const [fd, dest] of data) args.push("--perms", "0644", "--ro-bind-data", String(fd), dest);
  for (const p of ETC_BINDS) args.push("--ro-bind-try", p, p);
  args.push("--bind", input.workspaceDir, WORKSPACE);
  // The synthesized root tmpfs becomes read-only too: /workspace and /tmp are the writable places.
  args.push("--remount-ro", "/");
  args.push("--chdir", input.cwd, "--clearenv");
  for (const [k, v] of Object.entries(input.env)) {
    if (!ENV_NAME.test(k))
      invalid(`invalid env name ${JSON.stringify(k)}`, "env names must not contain '=' or NUL");
    assertNoNul(`env ${k}`, v);
    args.push("--setenv", k, v);
  }
  return args;
}

/** NUL-terminated encoding read by `bwrap --args FD`. */
export function encodeArgs(args: string[]): Buffer {
  return Buffer.from(args.map((a) => `${a}\0`).join(""), "utf8");
}
