import { randomBytes } from "node:crypto";

/** Prefixed ids: one glance tells what a value is. The suffix is 16 random bytes in base32. */
export const idPrefixes = [
  "run",
  "job",
  "rnr",
  "art",
  "usr",
  "tok",
  "evt",
  "stp",
  "repo",
  "flw",
  "env",
  "apv",
  "lse",
] as const;
export type IdPrefix = (typeof idPrefixes)[number];
export type Id<P extends IdPrefix> = `${P}_${string}`;

export type RunId = Id<"run">;
export type JobId = Id<"job">;
export type RunnerId = Id<"rnr">;
export type UserId = Id<"usr">;
export type TokenId = Id<"tok">;

const alphabet = "abcdefghijklmnopqrstuvwxyz234567";

export function newId<P extends IdPrefix>(prefix: P, random: (n: number) => Buffer = randomBytes): Id<P> {
  const bytes = random(10);
  let bits = 0;
  let value = 0;
  let out = "";
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += alphabet[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  return `${prefix}_${out}`;
}

export function isId<P extends IdPrefix>(prefix: P, value: string): value is Id<P> {
  return new RegExp(`^${prefix}_[a-z2-7]{16}$`).test(value);
}
