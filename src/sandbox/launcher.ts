/**
 * A step launcher: a root bash process, started ahead of time, that first joins a cgroup when told
 * and then execs the step's command line when told. Starting it early takes the two slow parts of
 * a launch off the step's critical path: Node's spawn() (libuv forks the whole controller, which
 * costs in proportion to its memory) and the cgroup join (a migration waits for an RCU grace
 * period, 10+ ms when the kernel's cgroup lock has been idle). Every process of the step, bwrap
 * included, is still born inside the job's cgroup: the launcher joins before it execs anything.
 */
import { type ChildProcess, spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { BASH } from "./host.js";

// fd layout in the launcher, kept across exec into setpriv and bwrap; Node places extra "pipe"
// stdio entries at these numbers.
export const FD_ARGS = 3;
const FD_STATUS = 4;
export const ETC_FDS = { passwd: 5, group: 6, hosts: 7, hostname: 8 } as const;
export const FD_RESOLV = 9;
const FD_JOIN = 10;
const FD_LAUNCH = 11;
export const FD_SECCOMP = 12;
/** Read by the command only when it is fed; otherwise closed before exec so nothing inherits it. */
const OPTIONAL_FDS = [FD_RESOLV, FD_SECCOMP] as const;
const LAST_FD = FD_SECCOMP;
/** Environment variable naming the sandbox root: how the reaper finds launchers outside a cgroup. */
export const SANDBOX_MARKER = "AIRLOCK_SANDBOX_ROOT";
/** RLIMIT_NOFILE (soft and hard) of every step process. */
export const STEP_NOFILE = 8192;

/**
 * Orders arrive NUL-separated, each on its own pipe, complete at EOF; `mapfile -d ''` keeps every
 * byte of every argument (no word splitting, no eval). An empty order (the controller retired the
 * launcher or died) ends it. Failures are reported on fd 4, which is closed before exec so the
 * step cannot write to it.
 */
// biome-ignore-start lint/suspicious/noTemplateCurlyInString: ${…} here is bash parameter expansion
export const LAUNCHER_SCRIPT = [
  // Descriptors the controller inherited without close-on-exec (from its own parent) must not
  // reach the step: only 0-12 are ours.
  `for f in /proc/self/fd/*; do f="\${f##*/}"; [ "$f" -le ${LAST_FD} ] || exec {f}>&-; done`,
  "mapfile -d '' -t cg <&10; exec 10<&-",
  '[ "${#cg[@]}" -gt 0 ] || exit 125',
  'for f in "${cg[@]}"; do',
  // Its error text goes to the status channel too, not to the step's stderr.
  '  echo "$$" 2>&4 > "$f" || { echo "cannot join cgroup via $f" >&4; exit 125; }',
  "done",
  "echo ok >&4",
  "mapfile -d '' -t cmd <&11; exec 11<&-",
  '[ "${#cmd[@]}" -gt 1 ] || exit 125',
  // The first item lists the optional descriptors the command reads (resolv.conf on 9, the
  // seccomp filter on 12); the others must not be inherited.
  `for f in ${OPTIONAL_FDS.join(" ")}; do [[ " \${cmd[0]} " == *" $f "* ]] || exec {f}<&-; done`,
  // The reaper's marker is only needed until the cgroup holds us; past here it would show the
  // host's data directory to the step in /proc/1/environ (bwrap's init keeps this env).
  `unset ${SANDBOX_MARKER}`,
  // Per-process descriptors: pids.max × this stays a fraction of the host's fs.file-max, instead
  // of inheriting the controller's limit.
  `ulimit -n ${STEP_NOFILE}`,
  'exec 4>&- "${cmd[@]:1}"',
].join("\n");
// biome-ignore-end lint/suspicious/noTemplateCurlyInString: ${…} here is bash parameter expansion

function nulList(items: readonly string[]): Buffer {
  for (const item of items) {
    if (item.includes("\0")) throw new Error(`launcher order contains a NUL byte: ${JSON.stringify(item)}`);
  }
  return Buffer.from(items.map((i) => `${i}\0`).join(""), "utf8");
}

export class Launcher {
  readonly child: ChildProcess;
  /** Settles when the process has exited and its pipes have closed (or it could not start). */
  readonly closed: Promise<{ code: number | null; signal: string | null }>;
  /** Settles when the process has exited; pipes may still be held open by its descendants. */
  readonly exited: Promise<void>;
  private status = "";
  private dead = false;
  private joinSent = false;
  private launched = false;

  /** Spawns the launcher; it waits, holding no cgroup yet, until join(). */
  constructor(env: Record<string, string>) {
    this.child = spawn(BASH, ["--noprofile", "--norc", "-c", LAUNCHER_SCRIPT, "airlock-launcher"], {
      cwd: "/",
      env,
      // Own session: a Ctrl-C aimed at the controller's terminal must not reach job processes.
      detached: true,
      stdio: Array.from({ length: LAST_FD + 1 }, () => "pipe" as const),
    });
    // EPIPE on any of them just means the launcher died early, which the status channel reports.
    for (const s of this.child.stdio) s?.on("error", () => undefined);
    // Listeners attached now, so a launcher that dies before it is used still reports it.
    this.closed = new Promise((resolve, reject) => {
      this.child.on("error", reject);
      this.child.on("close", (code, signal) => resolve({ code, signal }));
    });
    this.closed.catch(() => undefined);
    this.exited = new Promise((resolve) => {
      this.child.on("exit", () => {
        this.dead = true;
        resolve();
      });
      this.child.on("error", () => {
        this.dead = true;
        resolve();
      });
    });
    (this.child.stdio[FD_STATUS] as Readable).on("data", (c: Buffer) => {
      this.status += c.toString();
    });
  }

  /** Still waiting for its command: not launched, not dead. */
  get standing(): boolean {
    return !this.dead && !this.launched;
  }

  /** It has written its pid into every cgroup.procs it was given (and said so). */
  get joined(): boolean {
    return this.status.includes("ok");
  }

  /** Failure text from the launcher, or "ok" once it has joined. Complete after the child closes. */
  get statusText(): string {
    return this.status;
  }

  /** Tells it which cgroup.procs files to join (every v1 hierarchy, or the one v2 file). */
  join(procsFiles: readonly string[]): this {
    if (this.joinSent) throw new Error("launcher: join() twice");
    this.joinSent = true;
    this.writer(FD_JOIN).end(nulList(procsFiles));
    return this;
  }

  /**
   * Hands it the data its command reads (bwrap's options, the synthesized /etc files) and the
   * command itself, which it execs once joined. Returns the process whose stdio is the step's.
   */
  launch(argv: readonly string[], feeds: ReadonlyMap<number, string | Buffer>): ChildProcess {
    if (!this.joinSent) throw new Error("launcher: launch() before join()");
    if (this.launched) throw new Error("launcher: launch() twice");
    this.launched = true;
    for (const [fd, data] of feeds) this.writer(fd).end(data);
    const fed = OPTIONAL_FDS.filter((fd) => feeds.has(fd));
    for (const fd of OPTIONAL_FDS) if (!feeds.has(fd)) this.writer(fd).end();
    const order = [fed.length > 0 ? fed.join(" ") : "-", ...argv];
    this.writer(FD_LAUNCH).end(nulList(order));
    return this.child;
  }

  private writer(fd: number): Writable {
    return (this.child.stdio as ReadonlyArray<Readable | Writable | null | undefined>)[fd] as Writable;
  }

  /** Ends an unused launcher: an empty order makes it exit by itself. */
  retire(): void {
    if (this.launched) return;
    this.launched = true;
    if (!this.joinSent) this.writer(FD_JOIN).end();
    this.writer(FD_LAUNCH).end();
    for (const fd of [0, FD_ARGS, ...Object.values(ETC_FDS), ...OPTIONAL_FDS]) this.writer(fd).end();
  }
}
