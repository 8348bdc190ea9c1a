/**
 * Kernel object names for a job. Interface names are at most 15 bytes, so the job id is hashed
 * to a short id: 8 base32 characters = 40 bits, ample for a few thousand concurrent jobs, and
 * stable, so a reaper or an operator can tell which job a leftover belonged to.
 */
import { createHash } from "node:crypto";
import { AirlockError } from "../errors.js";
import type { TableNames } from "./nft.js";

export const DEFAULT_NAMES: TableNames = { table: "airlock", prefix: "alk" };

const alphabet = "abcdefghijklmnopqrstuvwxyz234567";

export function shortId(jobId: string): string {
  const digest = createHash("sha256").update(jobId).digest();
  let out = "";
  for (let i = 0; i < 8; i++) out += alphabet[(digest[i] as number) & 31];
  return out;
}

export interface JobNames {
  short: string;
  netns: string;
  nsPath: string;
  hostIf: string;
  jobIf: string;
}

export function assertTableNames(n: TableNames): void {
  // The prefix + 8 + "h" must fit IFNAMSIZ-1 = 15; names go into nft scripts, so no quoting games.
  if (!/^al[a-z0-9]{1,4}$/.test(n.prefix) || !/^[a-z][a-z0-9_]{0,31}$/.test(n.table)) {
    throw new AirlockError("CONFIG_INVALID", `invalid network names ${JSON.stringify(n)}`, {
      hint: "prefix: \"al\" then 1-4 lowercase letters/digits; table: lowercase letters, digits, '_'",
    });
  }
}

export function jobNames(jobId: string, n: TableNames = DEFAULT_NAMES): JobNames {
  const short = shortId(jobId);
  const netns = `${n.prefix}-${short}`;
  return {
    short,
    netns,
    nsPath: `/run/netns/${netns}`,
    hostIf: `${n.prefix}${short}h`,
    jobIf: `${n.prefix}${short}j`,
  };
}
