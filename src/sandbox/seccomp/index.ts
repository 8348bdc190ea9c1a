/**
 * The seccomp filter every step runs under, as the bytes `bwrap --seccomp FD` reads. Built once
 * per process and architecture (a few microseconds, but not on the step's launch path twice).
 */
import { endianness } from "node:os";
import { AirlockError } from "../../errors.js";
import { ARCHES, archFor } from "./arch.js";
import { encode } from "./bpf.js";
import { compileFilter } from "./policy.js";

const built = new Map<string, Buffer>();

export function jobSeccompFilter(nodeArch: string = process.arch): Buffer {
  let program = built.get(nodeArch);
  if (program) return program;
  const arch = archFor(nodeArch);
  if (!arch || endianness() !== "LE") {
    throw new AirlockError("SANDBOX_UNAVAILABLE", `no seccomp syscall table for architecture ${nodeArch}`, {
      hint: `Airlock sandboxes jobs on ${ARCHES.map((a) => a.node).join(" and ")} only`,
    });
  }
  program = encode(compileFilter(arch));
  built.set(nodeArch, program);
  return program;
}
