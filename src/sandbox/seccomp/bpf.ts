/**
 * Just enough classic BPF to write a seccomp filter: the instructions a filter uses, symbolic
 * jump targets, and the encoding the kernel (and `bwrap --seccomp FD`) reads: an array of
 * `struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }`, 8 bytes each, in host byte order.
 *
 * Classic BPF only jumps forward, and a conditional jump reaches at most 255 instructions ahead;
 * the assembler refuses anything else rather than emit a program the kernel would reject (or,
 * worse, one that jumps somewhere else than meant).
 */

// Instruction classes and fields (linux/bpf_common.h).
const BPF_LD = 0x00;
const BPF_JMP = 0x05;
const BPF_RET = 0x06;
const BPF_W = 0x00;
const BPF_ABS = 0x20;
const BPF_K = 0x00;
const BPF_JA = 0x00;
const BPF_JEQ = 0x10;
const BPF_JGE = 0x30;
const BPF_JSET = 0x40;

export const OP = {
  /** A = the 32-bit word at offset k of struct seccomp_data. */
  LD_ABS: BPF_LD | BPF_W | BPF_ABS,
  JA: BPF_JMP | BPF_JA | BPF_K,
  JEQ: BPF_JMP | BPF_JEQ | BPF_K,
  JGE: BPF_JMP | BPF_JGE | BPF_K,
  JSET: BPF_JMP | BPF_JSET | BPF_K,
  RET: BPF_RET | BPF_K,
} as const;

/** The kernel's limit on a filter's length (BPF_MAXINSNS). */
export const MAX_INSNS = 4096;
export const INSN_BYTES = 8;

export interface Insn {
  code: number;
  jt: number;
  jf: number;
  k: number;
}

/** A conditional jump's target: a label, or undefined for "the next instruction". */
type Target = string | undefined;

type Pending =
  | { kind: "insn"; code: number; k: number; jt?: Target; jf?: Target }
  | { kind: "label"; name: string };

/** Builds a program top to bottom; labels may be used before they are placed (forward jumps only). */
export class Assembler {
  private readonly items: Pending[] = [];

  label(name: string): this {
    this.items.push({ kind: "label", name });
    return this;
  }

  /** A = u32 at `offset` of struct seccomp_data. */
  load(offset: number): this {
    return this.insn(OP.LD_ABS, offset);
  }

  jeq(k: number, jt: Target, jf?: Target): this {
    return this.insn(OP.JEQ, k, jt, jf);
  }

  jge(k: number, jt: Target, jf?: Target): this {
    return this.insn(OP.JGE, k, jt, jf);
  }

  jset(k: number, jt: Target, jf?: Target): this {
    return this.insn(OP.JSET, k, jt, jf);
  }

  ret(k: number): this {
    return this.insn(OP.RET, k);
  }

  private insn(code: number, k: number, jt?: Target, jf?: Target): this {
    if (!Number.isInteger(k) || k < 0 || k > 0xffff_ffff) throw new Error(`bpf: k out of range: ${k}`);
    this.items.push({ kind: "insn", code, k, jt, jf });
    return this;
  }

  /** Resolves labels into relative offsets. */
  instructions(): Insn[] {
    const at = new Map<string, number>();
    let pc = 0;
    for (const item of this.items) {
      if (item.kind === "label") {
        if (at.has(item.name)) throw new Error(`bpf: label ${item.name} placed twice`);
        at.set(item.name, pc);
      } else pc++;
    }
    if (pc === 0 || pc > MAX_INSNS) throw new Error(`bpf: program of ${pc} instructions`);
    const out: Insn[] = [];
    for (const item of this.items) {
      if (item.kind === "label") continue;
      const here = out.length;
      const offset = (target: Target): number => {
        if (target === undefined) return 0;
        const to = at.get(target);
        if (to === undefined) throw new Error(`bpf: jump to unknown label ${target}`);
        const rel = to - (here + 1);
        if (rel < 0 || rel > 255)
          throw new Error(`bpf: jump from ${here} to ${target} (${to}) is out of reach`);
        return rel;
      };
      out.push({ code: item.code, k: item.k, jt: offset(item.jt), jf: offset(item.jf) });
    }
    // Falling off the end is not a verdict; the kernel rejects such programs.
    if (out[out.length - 1]?.code !== OP.RET) throw new Error("bpf: program does not end in a return");
    return out;
  }
}

/** `struct sock_filter[]` in little-endian order (every architecture we emit for is little-endian). */
export function encode(insns: readonly Insn[]): Buffer {
  const buf = Buffer.alloc(insns.length * INSN_BYTES);
  insns.forEach((i, n) => {
    const o = n * INSN_BYTES;
    buf.writeUInt16LE(i.code, o);
    buf.writeUInt8(i.jt, o + 2);
    buf.writeUInt8(i.jf, o + 3);
    buf.writeUInt32LE(i.k, o + 4);
  });
  return buf;
}

export function decode(buf: Buffer): Insn[] {
  if (buf.length % INSN_BYTES !== 0) throw new Error("bpf: length is not a multiple of 8");
  const out: Insn[] = [];
  for (let o = 0; o < buf.length; o += INSN_BYTES) {
    out.push({
      code: buf.readUInt16LE(o),
      jt: buf.readUInt8(o + 2),
      jf: buf.readUInt8(o + 3),
      k: buf.readUInt32LE(o + 4),
    });
  }
  return out;
}
