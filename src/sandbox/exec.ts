/**
 * One step = one bwrap invocation. A root shell first writes its own pid into the job's cgroup,
 * then execs setpriv (drop to the job uid, no_new_privs) which execs bwrap: every process of the
 * step, bwrap included, is born inside the cgroup, with no window in which it is outside.
 */
import { spawn } from "node:child_process";
import type { Readable, Writable } from "node:stream";
import { AirlockError } from "../errors.js";
import {
  assertArgv,
  buildBwrapArgs,
  encodeArgs,
  etcFiles,
  type RootEntry,
  sandboxEnv,
  WORKSPACE,
} from "./bwrap-args.js";
import type { JobCgroup } from "./cgroups/index.js";
import { BWRAP, SETPRIV, SH } from "./host.js";
import type { ExecRequest, ExecResult, OutputSink, SandboxNetwork } from "./types.js";

export interface StepContext {
  jobId: string;
  uid: number;
  workspaceDir: string;
  cgroup: JobCgroup;
  rootEntries: RootEntry[];
  /** Environment of the root wrapper: PATH plus the reaper's marker. Never the step's env. */
  wrapperEnv: Record<string, string>;
  network?: SandboxNetwork;
}

// fd layout in the wrapper and bwrap; Node places extra "pipe" stdio entries at these numbers.
const FD_ARGS = 3;
const FD_STATUS = 4;
export const ETC_FDS = { passwd: 5, group: 6, hosts: 7, hostname: 8 } as const;
const FD_RESOLV = 9;

// $1 = number of cgroup.procs files, then the files, then the command. Failures are reported on
// fd 4, which is closed before exec so the step cannot write to it.
export const WRAPPER = [
  'n="$1"; shift',
  'while [ "$n" -gt 0 ]; do',
  '  echo "$$" > "$1" || { echo "cannot join cgroup via $1" >&4; exit 125; }',
  "  shift; n=$((n - 1))",
  "done",
  "echo ok >&4",
  'exec 4>&- "$@"',
].join("\n");

/** Kills the step's whole tree; set by the caller so destroy() can interrupt a running step. */
export type Interrupt = (reason: "cancelled") => void;

export async function runStep(
  ctx: StepContext,
  req: ExecRequest,
  sink: OutputSink,
  onStart: (interrupt: Interrupt) => void,
): Promise<ExecResult> {
  assertArgv(req.argv);
  const started = performance.now();
  const bwrapArgs = buildBwrapArgs({
    hostname: ctx.jobId,
    workspaceDir: ctx.workspaceDir,
    rootEntries: ctx.rootEntries,
    etcFds: ETC_FDS,
    env: sandboxEnv(ctx.jobId, req.env),
    cwd: req.cwd ?? WORKSPACE,
    ...(ctx.network ? { resolvFd: FD_RESOLV } : {}),
  });
  if (req.signal?.aborted) {
    return {
      exitCode: null,
      signal: null,
      timedOut: false,
      cancelled: true,
      oomKilled: false,
      durationMs: 0,
    };
  }
  const oomBefore = await ctx.cgroup.oomKills();
  const uid = String(ctx.uid);
  const child = spawn(
    SH,
    [
      "-c",
      WRAPPER,
      "airlock-step",
      String(ctx.cgroup.procsFiles.length),
      ...ctx.cgroup.procsFiles,
      ...(ctx.network?.enterArgv ?? []),
      SETPRIV,
      "--reuid",
      uid,
      "--regid",
      uid,
      "--clear-groups",
      "--no-new-privs",
      BWRAP,
      "--args",
      String(FD_ARGS),
      "--",
      ...req.argv,
    ],
    {
      cwd: "/",
      env: ctx.wrapperEnv,
      // Own session: a Ctrl-C aimed at the controller's terminal must not reach job processes.
      detached: true,
      stdio: [
        req.stdin ? "pipe" : "ignore",
        "pipe",
        "pipe",
        "pipe",
        "pipe",
        "pipe",
        "pipe",
        "pipe",
        "pipe",
        ...(ctx.network ? (["pipe"] as const) : []),
      ],
    },
  );
  if (req.stdin && child.stdin) {
    // A step that exits without reading all of stdin is the step's business, not an error here.
    child.stdin.on("error", () => undefined);
    req.stdin.on("error", () => child.stdin?.destroy());
    req.stdin.pipe(child.stdin);
  }

  // Feed bwrap its options and the synthesized /etc. EPIPE just means the wrapper died early,
  // which the status channel reports.
  const feed = (fd: number, data: string | Buffer) => {
    const s = child.stdio[fd] as Writable;
    s.on("error", () => undefined);
    s.end(data);
  };
  feed(FD_ARGS, encodeArgs(bwrapArgs));
  const etc = etcFiles(ctx.jobId);
  for (const [name, fd] of Object.entries(ETC_FDS)) feed(fd, etc[name as keyof typeof ETC_FDS]);
  if (ctx.network) feed(FD_RESOLV, ctx.network.resolvConf);

  let status = "";
  const statusStream = child.stdio[FD_STATUS] as Readable;
  statusStream.on("data", (c: Buffer) => {
    status += c.toString();
  });
  statusStream.on("error", () => undefined);

  let timedOut = false;
  let cancelled = false;
  let failure: unknown;
  let killing: Promise<unknown> | undefined;
  const killTree = () => {
    // The cgroup holds the whole tree (bwrap, its init, daemons the step forked); bwrap's pid alone
    // would miss processes that left the step's process group.
    killing ??= ctx.cgroup.killAll().catch((e: unknown) => {
      failure ??= e;
    });
  };
  const timer =
    req.timeoutMs !== undefined
      ? setTimeout(() => {
          timedOut = true;
          killTree();
        }, req.timeoutMs)
      : undefined;
  const onAbort = () => {
    cancelled = true;
    killTree();
  };
  req.signal?.addEventListener("abort", onAbort, { once: true });
  onStart(() => onAbort());

  const pump = (name: "stdout" | "stderr", stream: Readable) => {
    stream.on("data", (chunk: Buffer) => {
      try {
        sink.write(name, chunk);
      } catch (e) {
        failure ??= e;
        killTree();
      }
    });
  };
  pump("stdout", child.stdout as Readable);
  pump("stderr", child.stderr as Readable);

  let exitCode: number | null;
  let signal: string | null;
  try {
    [exitCode, signal] = await new Promise<[number | null, string | null]>((resolve, reject) => {
      child.on("error", reject);
      let lingering: NodeJS.Timeout | undefined;
      child.on("exit", () => {
        // Everything in the pid namespace dies with bwrap, so the pipes close promptly; if some
        // process still holds one, kill the cgroup rather than hang the step.
        lingering = setTimeout(killTree, 2000);
      });
      child.on("close", (code, sig) => {
        clearTimeout(lingering);
        resolve([code, sig]);
      });
    });
  } finally {
    if (timer) clearTimeout(timer);
    req.signal?.removeEventListener("abort", onAbort);
  }
  await killing;
  if (failure) throw failure;
  if (!status.includes("ok")) {
    throw new AirlockError(
      "SANDBOX_FAILED",
      `step did not start in the job cgroup: ${status.trim() || "wrapper died"}`,
      {
        hint: "check that the job cgroup still exists and /sys/fs/cgroup is writable by root",
        details: { jobId: ctx.jobId },
      },
    );
  }
  const oomKilled = (await ctx.cgroup.oomKills()) > oomBefore;
  return {
    exitCode,
    signal,
    timedOut,
    cancelled,
    oomKilled,
    durationMs: Math.round(performance.now() - started),
  };
}
