import { existsSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { AARCH64, ARCHES, type SeccompArch, X86_64 } from "./arch.js";
import { Assembler, decode, encode, type Insn, OP } from "./bpf.js";
import { jobSeccompFilter } from "./index.js";
import {
  ARG_RULES,
  compileFilter,
  DENIED,
  EAFNOSUPPORT,
  ENOSYS,
  EPERM,
  RET_ALLOW,
  RET_ERRNO,
  RET_KILL_PROCESS,
} from "./policy.js";

/**
 * A classic-BPF interpreter for seccomp programs, written from the kernel's rules rather than from
 * the generator: 32-bit accumulator, loads of aligned words of struct seccomp_data, forward jumps,
 * and no falling off the end. It also records whether a run read a syscall argument, which is what
 * keeps the kernel from caching an "allow" for that syscall.
 */
interface SeccompData {
  nr: number;
  arch: number;
  args?: readonly bigint[];
}

function run(insns: readonly Insn[], d: SeccompData): { ret: number; loadedArg: boolean } {
  const word = (off: number): number => {
    if (off % 4 !== 0 || off < 0 || off >= 64) throw new Error(`bad load offset ${off}`);
    if (off === 0) return d.nr >>> 0;
    if (off === 4) return d.arch >>> 0;
    if (off < 16) return 0; // instruction pointer
    const arg = d.args?.[(off - 16) >> 3] ?? 0n;
    return Number(off % 8 === 0 ? arg & 0xffff_ffffn : (arg >> 32n) & 0xffff_ffffn);
  };
  let acc = 0;
  let loadedArg = false;
  for (let pc = 0; pc < insns.length; pc++) {
    const i = insns[pc] as Insn;
    switch (i.code) {
      case OP.LD_ABS:
        acc = word(i.k);
        if (i.k >= 16) loadedArg = true;
        break;
      case OP.JA:
        pc += i.k;
        break;
      case OP.JEQ:
        pc += acc === i.k ? i.jt : i.jf;
        break;
      case OP.JGE:
        pc += acc >= i.k ? i.jt : i.jf;
        break;
      case OP.JSET:
        pc += (acc & i.k) !== 0 ? i.jt : i.jf;
        break;
      case OP.RET:
        return { ret: i.k >>> 0, loadedArg };
      default:
        throw new Error(`unexpected opcode 0x${i.code.toString(16)} at ${pc}`);
    }
  }
  throw new Error("fell off the end of the program");
}

type Verdict = "allow" | "kill" | { errno: number };
function verdict(insns: readonly Insn[], d: SeccompData): Verdict {
  const { ret } = run(insns, d);
  if (ret === RET_ALLOW) return "allow";
  if (ret === RET_KILL_PROCESS) return "kill";
  if ((ret & 0xffff_0000) === RET_ERRNO) return { errno: ret & 0xffff };
  throw new Error(`unexpected return 0x${ret.toString(16)}`);
}

const AUDIT_ARCH_I386 = 0x4000_0003;
const AUDIT_ARCH_ARM = 0x4000_0028;

/** A few syscalls every build makes, by architecture: these must stay allowed. */
const ORDINARY: Record<SeccompArch["node"], Record<string, number>> = {
  x64: { read: 0, write: 1, mmap: 9, execve: 59, wait4: 61, futex: 202, openat: 257, seccomp: 317 },
  arm64: { openat: 56, read: 63, write: 64, futex: 98, execve: 221, mmap: 222, wait4: 260, seccomp: 277 },
};

describe.each(ARCHES.map((a) => [a.node, a] as const))("seccomp filter for %s", (_name, arch) => {
  const prog = compileFilter(arch);
  const call = (name: string, ...args: bigint[]) => {
    const nr = arch.syscalls[name];
    if (nr === undefined) throw new Error(`no ${name}`);
    return verdict(prog, { nr, arch: arch.auditArch, args });
  };

  it("refuses every denied syscall with its errno", () => {
    for (const [name, errno] of Object.entries(DENIED)) {
      if (arch.absent.includes(name)) continue;
      expect([name, call(name)]).toEqual([name, { errno }]);
    }
    expect(call("keyctl")).toEqual({ errno: EPERM });
    expect(call("clone3")).toEqual({ errno: ENOSYS });
    expect(call("io_uring_setup")).toEqual({ errno: ENOSYS });
  });

  it("allows what ordinary programs use, ptrace included, without looking at arguments", () => {
    for (const [name, nr] of Object.entries(ORDINARY[arch.node])) {
      expect([name, verdict(prog, { nr, arch: arch.auditArch })]).toEqual([name, "allow"]);
    }
    expect(call("ptrace")).toBe("allow");
    // Every syscall without an argument rule is decided on its number alone (so the kernel's
    // action cache can skip the filter for the allowed ones).
    const withArgs = new Set(ARG_RULES.map((r) => arch.syscalls[r.syscall]));
    for (let nr = 0; nr < 512; nr++) {
      if (withArgs.has(nr)) continue;
      expect(run(prog, { nr, arch: arch.auditArch, args: [1n, 2n, 3n] }).loadedArg).toBe(false);
    }
  });

  it("kills a syscall made through a foreign ABI, whatever its number", () => {
    for (const foreign of [AUDIT_ARCH_I386, AUDIT_ARCH_ARM, ...ARCHES.map((a) => a.auditArch)]) {
      if (foreign === arch.auditArch) continue;
      for (const nr of [0, 1, 20, 56, 250]) expect(verdict(prog, { nr, arch: foreign })).toBe("kill");
    }
  });

  it("refuses TIOCSTI and TIOCLINUX, also with garbage in the high word, and allows other ioctls", () => {
    expect(call("ioctl", 0n, 0x5412n)).toEqual({ errno: EPERM });
    expect(call("ioctl", 0n, 0x541cn)).toEqual({ errno: EPERM });
    // The kernel takes cmd as unsigned int: 0x1_00005412 is TIOCSTI to it, so it is to the filter.
    expect(call("ioctl", 0n, 0x1_0000_5412n)).toEqual({ errno: EPERM });
    expect(call("ioctl", 0n, 0x5401n)).toBe("allow"); // TCGETS
    expect(call("ioctl", 0n, 0x541bn)).toBe("allow"); // FIONREAD
    expect(call("ioctl", 0x5412n, 0n)).toBe("allow"); // the fd is not the command
  });

  it("lets clone fork and make threads, but not namespaces", () => {
    const SIGCHLD = 17n;
    const THREAD = 0x3d0f00n; // what glibc's pthread_create passes
    expect(call("clone", SIGCHLD)).toBe("allow");
    expect(call("clone", THREAD)).toBe("allow");
    expect(call("clone", 0x4111n)).toBe("allow"); // CLONE_VM|CLONE_VFORK|SIGCHLD (posix_spawn)
    for (const ns of [0x20000n, 0x2000000n, 0x4000000n, 0x8000000n, 0x10000000n, 0x20000000n, 0x40000000n]) {
      expect(call("clone", ns | SIGCHLD)).toEqual({ errno: EPERM });
      expect(call("clone", (0xffn << 32n) | ns | SIGCHLD)).toEqual({ errno: EPERM });
    }
  });

  it("allows Docker's personalities and refuses the ones that weaken the process", () => {
    for (const p of [0n, 8n, 0x20000n, 0x20008n, 0xffff_ffffn]) expect(call("personality", p)).toBe("allow");
    // The kernel truncates to unsigned int: a high-word-only value is PER_LINUX to it.
    expect(call("personality", 0x1_0000_0000n)).toBe("allow");
    for (const p of [0x40000n, 0x400000n, 0x100000n, 0x1_0004_0000n])
      expect(call("personality", p)).toEqual({ errno: EPERM });
  });

  it("refuses AF_VSOCK sockets and allows the others", () => {
    expect(call("socket", 40n, 1n)).toEqual({ errno: EAFNOSUPPORT });
    for (const family of [1n, 2n, 10n, 16n]) expect(call("socket", family, 1n)).toBe("allow");
  });

  it("is small: one pass over a short jump chain", () => {
    expect(prog.length).toBeLessThan(110);
    expect(prog[prog.length - 1]).toEqual({ code: OP.RET, jt: 0, jf: 0, k: RET_KILL_PROCESS });
    expect(decode(encode(prog))).toEqual(prog);
  });
});

describe("x86_64 specifics", () => {
  const prog = compileFilter(X86_64);
  const x86 = (nr: number) => verdict(prog, { nr, arch: X86_64.auditArch });

  it("starts with the architecture check, in the kernel's encoding", () => {
    const jf = (prog.length - 1 - 2).toString(16).padStart(2, "0");
    // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, little-endian
    expect(encode(prog).subarray(0, 24).toString("hex")).toBe(
      [
        "2000_00_00_04000000", // ld [4] (arch)
        `1500_00_${jf}_3e0000c0`, // jeq #AUDIT_ARCH_X86_64, next, kill
        "2000_00_00_00000000", // ld [0] (nr)
      ]
        .join("")
        .replaceAll("_", ""),
    );
  });

  it("refuses the x32 ABI with ENOSYS, and passes negative numbers (a tracer's -1) through", () => {
    expect(x86(0x4000_0000 + 39)).toEqual({ errno: ENOSYS }); // getpid
    expect(x86(0x4000_0000 + 250)).toEqual({ errno: ENOSYS }); // keyctl
    expect(x86(0x4000_0000 + 56)).toEqual({ errno: ENOSYS }); // clone, whose flags x32 would hide
    expect(x86(0x7fff_ffff)).toEqual({ errno: ENOSYS });
    expect(x86(-1)).toBe("allow");
    expect(x86(0xffff_ffff)).toBe("allow");
  });
});

describe("syscall tables", () => {
  /** `#define __NR_name N` (and asm-generic's __NR3264_name) from a kernel header, when installed. */
  function header(path: string): Map<string, number> | undefined {
    if (!existsSync(path)) return undefined;
    const out = new Map<string, number>();
    for (const m of readFileSync(path, "utf8").matchAll(/^#define __NR(?:3264)?_(\w+)\s+(\d+)\s*$/gm))
      out.set(m[1] as string, Number(m[2]));
    return out;
  }
  const cases: [SeccompArch, string][] = [
    [X86_64, "/usr/include/x86_64-linux-gnu/asm/unistd_64.h"],
    [X86_64, "/usr/include/asm/unistd_64.h"],
    [AARCH64, "/usr/include/asm-generic/unistd.h"],
    [AARCH64, "/usr/include/aarch64-linux-gnu/asm/unistd.h"],
  ];

  it.each(cases)("agree with the host's kernel headers where they have the syscall (%#)", (arch, path) => {
    const defs = header(path);
    if (!defs || defs.size === 0) return; // headers not installed (linux-libc-dev)
    let compared = 0;
    for (const [name, nr] of Object.entries(arch.syscalls)) {
      const expected = defs.get(name);
      if (expected === undefined) continue; // newer than the headers (e.g. open_tree_attr)
      expect([name, nr]).toEqual([name, expected]);
      compared++;
    }
    expect(compared).toBeGreaterThan(30);
    for (const name of arch.absent) expect(defs.has(name)).toBe(false);
  });

  it("name every syscall the policy mentions, or say the architecture lacks it", () => {
    for (const arch of ARCHES) {
      for (const name of [...Object.keys(DENIED), ...ARG_RULES.map((r) => r.syscall)]) {
        expect(name in arch.syscalls || arch.absent.includes(name), `${arch.node} ${name}`).toBe(true);
      }
    }
  });
});

describe("jobSeccompFilter", () => {
  it("is built once per process and is whole sock_filter structs", () => {
    const a = jobSeccompFilter("x64");
    expect(jobSeccompFilter("x64")).toBe(a);
    expect(a.length % 8).toBe(0);
    expect(decode(a)).toEqual(compileFilter(X86_64));
    expect(decode(jobSeccompFilter("arm64"))).toEqual(compileFilter(AARCH64));
  });

  it("refuses an architecture it has no table for", () => {
    expect(() => jobSeccompFilter("riscv64")).toThrow(
      expect.objectContaining({ code: "SANDBOX_UNAVAILABLE" }),
    );
  });
});

describe("assembler", () => {
  it("refuses backward, unknown and out-of-reach jumps, and a program without a final return", () => {
    expect(() => new Assembler().label("x").jeq(1, "x").ret(0).instructions()).toThrow(/out of reach/);
    expect(() => new Assembler().jeq(1, "nowhere").ret(0).instructions()).toThrow(/unknown label/);
    const far = new Assembler().jeq(1, "end");
    for (let i = 0; i < 256; i++) far.ret(0);
    expect(() => far.label("end").ret(0).instructions()).toThrow(/out of reach/);
    expect(() => new Assembler().load(0).instructions()).toThrow(/return/);
    expect(() => new Assembler().ret(2 ** 32)).toThrow(/out of range/);
  });

  it("resolves labels to relative offsets", () => {
    const p = new Assembler().load(0).jeq(7, "b", "a").label("a").ret(1).label("b").ret(2).instructions();
    expect(p[1]).toEqual({ code: OP.JEQ, jt: 1, jf: 0, k: 7 });
    expect(verdictRaw(p, 7)).toBe(2);
    expect(verdictRaw(p, 8)).toBe(1);
  });
});

function verdictRaw(p: Insn[], nr: number): number {
  return run(p, { nr, arch: 0 }).ret;
}
