/**
 * The architectures the filter is built for, with the syscall numbers the policy names.
 *
 * Only the numbers the policy (./policy.ts) uses are listed: the filter is a denylist, so a
 * syscall that is not named here is simply allowed. Numbers come from the kernel's
 * arch/x86/entry/syscalls/syscall_64.tbl and include/uapi/asm-generic/unistd.h (arm64 uses the
 * generic table); `seccomp.test.ts` checks them against the host's <asm/unistd*.h> when present.
 * A name missing from an architecture (iopl, ioperm, uselib on arm64) does not exist there.
 */

export interface SeccompArch {
  /** Node's `process.arch` name. */
  node: "x64" | "arm64";
  /** AUDIT_ARCH_* (linux/audit.h): what seccomp_data.arch holds for a native syscall. */
  auditArch: number;
  /**
   * x86_64 only: syscalls with bit 30 of the number set are the x32 ABI, which seccomp reports
   * under the x86_64 audit arch; the filter must tell them apart by number.
   */
  x32SyscallBit?: number;
  syscalls: Readonly<Record<string, number>>;
  /** Syscalls the policy names that this architecture never had; anything else unknown is a typo. */
  absent: readonly string[];
}

// Since Linux 5.1 (io_uring, clone3, the new mount API…), new syscalls take the same number on
// every architecture.
const COMMON = {
  io_uring_setup: 425,
  io_uring_enter: 426,
  io_uring_register: 427,
  open_tree: 428,
  move_mount: 429,
  fsopen: 430,
  fsconfig: 431,
  fsmount: 432,
  fspick: 433,
  clone3: 435,
  mount_setattr: 442,
  quotactl_fd: 443,
  open_tree_attr: 467,
} as const;

export const X86_64: SeccompArch = {
  node: "x64",
  auditArch: 0xc000_003e, // EM_X86_64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
  x32SyscallBit: 0x4000_0000,
  syscalls: {
    ioctl: 16,
    socket: 41,
    clone: 56,
    ptrace: 101,
    syslog: 103,
    uselib: 134,
    personality: 135,
    pivot_root: 155,
    adjtimex: 159,
    acct: 163,
    settimeofday: 164,
    mount: 165,
    umount2: 166,
    swapon: 167,
    swapoff: 168,
    reboot: 169,
    iopl: 172,
    ioperm: 173,
    init_module: 175,
    delete_module: 176,
    quotactl: 179,
    lookup_dcookie: 212,
    clock_settime: 227,
    kexec_load: 246,
    add_key: 248,
    request_key: 249,
    keyctl: 250,
    unshare: 272,
    perf_event_open: 298,
    name_to_handle_at: 303,
    open_by_handle_at: 304,
    clock_adjtime: 305,
    setns: 308,
    finit_module: 313,
    kexec_file_load: 320,
    bpf: 321,
    userfaultfd: 323,
    ...COMMON,
  },
  absent: [],
};

export const AARCH64: SeccompArch = {
  node: "arm64",
  auditArch: 0xc000_00b7, // EM_AARCH64 | __AUDIT_ARCH_64BIT | __AUDIT_ARCH_LE
  syscalls: {
    lookup_dcookie: 18,
    ioctl: 29,
    umount2: 39,
    mount: 40,
    pivot_root: 41,
    quotactl: 60,
    acct: 89,
    personality: 92,
    unshare: 97,
    kexec_load: 104,
    init_module: 105,
    delete_module: 106,
    clock_settime: 112,
    syslog: 116,
    ptrace: 117,
    reboot: 142,
    settimeofday: 170,
    adjtimex: 171,
    socket: 198,
    add_key: 217,
    request_key: 218,
    keyctl: 219,
    clone: 220,
    swapon: 224,
    swapoff: 225,
    perf_event_open: 241,
    name_to_handle_at: 264,
    open_by_handle_at: 265,
    clock_adjtime: 266,
    setns: 268,
    finit_module: 273,
    bpf: 280,
    userfaultfd: 282,
    kexec_file_load: 294,
    ...COMMON,
  },
  absent: ["iopl", "ioperm", "uselib"],
};

export const ARCHES: readonly SeccompArch[] = [X86_64, AARCH64];

export function archFor(nodeArch: string): SeccompArch | undefined {
  return ARCHES.find((a) => a.node === nodeArch);
}
