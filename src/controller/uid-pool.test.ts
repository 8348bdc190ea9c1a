import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UidPool } from "./uid-pool.js";

const lockDir = () => mkdtempSync(join(tmpdir(), "airlock-uids-"));

describe("uid pool", () => {
  it("never hands out a uid twice while it is in use", () => {
    const pool = new UidPool(200_000, 3, lockDir());
    const got = [pool.acquire(), pool.acquire(), pool.acquire()];
    expect(new Set(got).size).toBe(3);
    expect(got.every((u) => u >= 200_000 && u < 200_003)).toBe(true);
    expect(() => pool.acquire()).toThrow(/all 3 sandbox uids are in use/);
    pool.release(got[1] as number);
    expect(pool.acquire()).toBe(got[1]);
  });

  it("shares the host with another controller without handing out the same uid", () => {
    const dir = lockDir();
    const a = new UidPool(200_000, 4, dir);
    const b = new UidPool(200_000, 4, dir);
    const mine = [a.acquire(), a.acquire()];
    const theirs = [b.acquire(), b.acquire()];
    expect(new Set([...mine, ...theirs]).size).toBe(4);
    expect(() => b.acquire()).toThrow(/in use/);
  });

  it("reuses a claim whose owner is gone", () => {
    const dir = lockDir();
    // A pid far above pid_max cannot be alive.
    writeFileSync(join(dir, "200000"), "99999999");
    const pool = new UidPool(200_000, 1, dir);
    expect(pool.acquire()).toBe(200_000);
  });
});
