/**
 * The job's syscall policy and its compilation to a seccomp BPF program.
 *
 * A denylist in the spirit of Docker's default profile: ordinary builds (shells, git, compilers,
 * node, python, curl, test runners, debuggers) keep every syscall they use, and the filter takes
 * away the kernel surface that a CI job has no business touching: facilities that are not
 * namespaced (keyring, clock, kernel log), that load code or change the kernel (modules, kexec,
 * BPF), that have a long record of exploitable bugs and are reachable without privilege
 * (io_uring, userfaultfd, perf events), and that rearrange the sandbox itself (mounts, namespaces).
 * Most of these already fail for a process without capabilities in a user namespace; the filter
 * makes the refusal independent of the kernel's capability checks, which is where the bugs were.
 *
 * What a refused call sees:
 *  - EPERM, like Docker, for things a program expects to be refused without privilege;
 *  - ENOSYS where callers treat "not implemented" as "use the fallback": clone3 (glibc ≥ 2.34
 *    then uses clone, whose flags the filter can inspect; clone3's live behind a pointer),
 *    io_uring (libuv, liburing users go back to epoll or a thread pool), and the x32 ABI (as on
 *    a kernel built without it);
 *  - EAFNOSUPPORT for AF_VSOCK sockets, as on a kernel without vsock.
 * A syscall from a foreign architecture (32-bit x86 via int 0x80 or a compat binary on x86_64,
 * arm32 on arm64) kills the process: the syscall numbers below do not apply to it, so letting it
 * through would bypass the whole list.
 *
 * Deliberately allowed:
 *  - ptrace (and process_vm_readv/writev, kcmp, pidfd_getfd, which need the same permission):
 *    gdb, strace and crash handlers in CI need it, and it is already confined: a step can only
 *    trace processes of its own job (same uid, same pid namespace, no CAP_SYS_PTRACE), never the
 *    root launcher waiting in the job's cgroup (other uid, other pid namespace). Tracing could
 *    bypass a tracee's seccomp filter only before Linux 4.8; Node 20 needs Linux 4.18.
 *  - personality, for the values Docker allows (query, PER_LINUX, PER_LINUX32 for `setarch
 *    i686`, UNAME26). Everything else is refused, notably ADDR_NO_RANDOMIZE and
 *    READ_IMPLIES_EXEC, which only weaken the process against exploitation (gdb prints a warning
 *    and runs the program with ASLR on).
 *  - seccomp and landlock, so a job may sandbox itself further (filters only ever add up).
 */

import type { SeccompArch } from "./arch.js";
import { Assembler, type Insn } from "./bpf.js";

// errno values; the same on every architecture in ./arch.ts (asm-generic/errno*.h).
export const EPERM = 1;
export const ENOSYS = 38;
export const EAFNOSUPPORT = 97;

// Filter return values (linux/seccomp.h). KILL_PROCESS (Linux 4.14) kills every thread, not just
// the caller, so a multithreaded attacker cannot carry on in a sibling thread.
export const RET_KILL_PROCESS = 0x8000_0000;
export const RET_ERRNO = 0x0005_0000;
export const RET_ALLOW = 0x7fff_0000;

// struct seccomp_data { int nr; u32 arch; u64 instruction_pointer; u64 args[6]; }
const OFF_NR = 0;
const OFF_ARCH = 4;
/** Low 32 bits of args[i]: the word at the lower address on a little-endian machine. */
const argLow = (i: number) => 16 + 8 * i;

/** Syscalls refused whatever their arguments, with the errno the caller sees. */
export const DENIED: Readonly<Record<string, number>> = {
  // The kernel keyring is not namespaced: keys of other users and jobs live in the same kernel.
  keyctl: EPERM,
  add_key: EPERM,
  request_key: EPERM,
  // Kernel-side code and tracing from an unprivileged process: the source of many kernel
  // exploits (verifier, userfaultfd-assisted races, perf) and never needed to build software.
  bpf: EPERM,
  userfaultfd: EPERM,
  perf_event_open: EPERM,
  lookup_dcookie: EPERM,
  // io_uring bypasses syscall filtering for the operations it performs and has had a steady flow
  // of privilege escalations; its users fall back to epoll or threads on ENOSYS.
  io_uring_setup: ENOSYS,
  io_uring_enter: ENOSYS,
  io_uring_register: ENOSYS,
  // Loading a kernel or kernel modules.
  kexec_load: EPERM,
  kexec_file_load: EPERM,
  init_module: EPERM,
  finit_module: EPERM,
  delete_module: EPERM,
  // File handles resolve outside the mount namespace (the "shocker" container escape).
  open_by_handle_at: EPERM,
  name_to_handle_at: EPERM,
  // The sandbox's filesystem is bubblewrap's to lay out, not the job's: old and new mount APIs.
  mount: EPERM,
  umount2: EPERM,
  pivot_root: EPERM,
  move_mount: EPERM,
  open_tree: EPERM,
  open_tree_attr: EPERM,
  fsopen: EPERM,
  fsconfig: EPERM,
  fsmount: EPERM,
  fspick: EPERM,
  mount_setattr: EPERM,
  quotactl: EPERM,
  quotactl_fd: EPERM,
  swapon: EPERM,
  swapoff: EPERM,
  // Host-wide state: power, process accounting, the clock, the kernel log.
  reboot: EPERM,
  acct: EPERM,
  settimeofday: EPERM,
  clock_settime: EPERM,
  clock_adjtime: EPERM,
  adjtimex: EPERM,
  syslog: EPERM,
  // Namespaces: a step may neither enter others' nor make new ones (clone's flags are checked
  // below; clone3 hides them behind a pointer, so it gets ENOSYS and glibc falls back to clone).
  setns: EPERM,
  unshare: EPERM,
  clone3: ENOSYS,
  // Raw I/O ports (x86) and a.out library loading (x86, long obsolete).
  iopl: EPERM,
  ioperm: EPERM,
  uselib: EPERM,
};

/**
 * A decision on one argument. Only its low 32 bits are looked at: each argument checked here is
 * one the kernel reads as 32 bits (ioctl's cmd, socket's family, personality's value are
 * `unsigned int`/`int`), or, for clone's flags, one whose interesting bits all live in the low word.
 * So garbage in the high word cannot hide a match from the filter and still reach the kernel.
 */
export type ArgTest =
  | { deny: "in"; values: readonly number[] }
  | { deny: "notIn"; values: readonly number[] }
  | { deny: "anyBit"; mask: number };

export interface ArgRule {
  syscall: string;
  arg: number;
  test: ArgTest;
  errno: number;
  why: string;
}

const TIOCSTI = 0x5412;
const TIOCLINUX = 0x541c;
const AF_VSOCK = 40;
// CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS | CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID |
// CLONE_NEWNET. (CLONE_NEWTIME, 0x80, is clone's exit-signal byte and is valid only for
// unshare/clone3, both refused whole.)
const CLONE_NEW_NAMESPACES = 0x7e02_0000;
// PER_LINUX, PER_LINUX32, UNAME26, PER_LINUX32|UNAME26, and 0xffffffff (query only).
const PERSONALITIES = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/** Checked first: ioctl is the hottest of these, and they are the only ones that load an argument. */
export const ARG_RULES: readonly ArgRule[] = [
  {
    syscall: "ioctl",
    arg: 1,
    test: { deny: "in", values: [TIOCSTI, TIOCLINUX] },
    errno: EPERM,
    why: "pushing input into a terminal, or TIOCLINUX's console selection, injects keystrokes",
  },
  {
    syscall: "socket",
    arg: 0,
    test: { deny: "in", values: [AF_VSOCK] },
    errno: EAFNOSUPPORT,
    why: "vsock is not network-namespaced: it reaches the hypervisor host around the job's network",
  },
  {
    syscall: "clone",
    arg: 0,
    test: { deny: "anyBit", mask: CLONE_NEW_NAMESPACES },
    errno: EPERM,
    why: "fork and threads stay; new namespaces do not",
  },
  {
    syscall: "personality",
    arg: 0,
    test: { deny: "notIn", values: PERSONALITIES },
    errno: EPERM,
    why: "ADDR_NO_RANDOMIZE, READ_IMPLIES_EXEC and friends only help an exploit",
  },
];

export interface SeccompPolicy {
  denied: Readonly<Record<string, number>>;
  argRules: readonly ArgRule[];
}

export const JOB_POLICY: SeccompPolicy = { denied: DENIED, argRules: ARG_RULES };

const errnoLabel = (e: number) => `errno:${e}`;

/**
 * Compiles a policy for one architecture. Layout (every jump forward, as classic BPF requires):
 *
 *   arch check → kill           a foreign ABI's numbers mean other syscalls
 *   x32 check → ENOSYS          x86_64 only
 *   jeq chain: arg rules, then unconditional denials → their body / their errno
 *   ret ALLOW
 *   arg-rule bodies             load one argument, decide
 *   ret ERRNO(e) for each e, ret KILL_PROCESS
 *
 * Allowed syscalls never load an argument, so the kernel (5.11+) proves them allowed once when
 * the filter is attached and skips the filter for them afterwards (the seccomp action cache):
 * the filter costs nothing on the syscalls a build makes millions of times.
 */
export function compileFilter(arch: SeccompArch, policy: SeccompPolicy = JOB_POLICY): Insn[] {
  const nr = (name: string): number | undefined => {
    const n = arch.syscalls[name];
    if (n !== undefined) return n;
    if (arch.absent.includes(name)) return undefined;
    throw new Error(`seccomp: no syscall number for ${name} on ${arch.node}`);
  };
  const seen = new Set<number>();
  const once = (name: string, n: number) => {
    if (seen.has(n)) throw new Error(`seccomp: ${name} (${n}) has two rules`);
    seen.add(n);
  };

  const a = new Assembler();
  a.load(OFF_ARCH).jeq(arch.auditArch, undefined, "kill");
  a.load(OFF_NR);
  if (arch.x32SyscallBit !== undefined) {
    // Numbers with bit 31 set (-1 above all, which a tracer writes to cancel a syscall and then
    // supplies the result itself) go to the kernel untouched; the rest of bit 30's range is x32.
    a.jge(0x8000_0000, "chain").jge(arch.x32SyscallBit, errnoLabel(ENOSYS));
  }
  a.label("chain");
  const rules: { rule: ArgRule; label: string }[] = [];
  for (const rule of policy.argRules) {
    const n = nr(rule.syscall);
    if (n === undefined) continue;
    once(rule.syscall, n);
    const label = `arg:${rule.syscall}`;
    rules.push({ rule, label });
    a.jeq(n, label);
  }
  const errnos = new Set<number>([ENOSYS]);
  for (const [name, errno] of Object.entries(policy.denied)) {
    const n = nr(name);
    if (n === undefined) continue;
    once(name, n);
    errnos.add(errno);
    a.jeq(n, errnoLabel(errno));
  }
  a.ret(RET_ALLOW);

  for (const { rule, label } of rules) {
    errnos.add(rule.errno);
    const deny = errnoLabel(rule.errno);
    a.label(label).load(argLow(rule.arg));
    const t = rule.test;
    if (t.deny === "in") {
      for (const v of t.values) a.jeq(v, deny);
      a.ret(RET_ALLOW);
    } else if (t.deny === "anyBit") {
      a.jset(t.mask, deny).ret(RET_ALLOW);
    } else {
      const allow = `${label}:allow`;
      for (const v of t.values) a.jeq(v, allow);
      a.ret(RET_ERRNO | rule.errno);
      a.label(allow).ret(RET_ALLOW);
    }
  }
  for (const e of errnos) a.label(errnoLabel(e)).ret(RET_ERRNO | e);
  a.label("kill").ret(RET_KILL_PROCESS);
  return a.instructions();
}
