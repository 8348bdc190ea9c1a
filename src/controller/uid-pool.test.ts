import { describe, expect, it } from "vitest";
import { UidPool } from "./uid-pool.js";

describe("uid pool", () => {
  it("never hands out a uid twice while it is in use", () => {
    const pool = new UidPool(200_000, 3);
    const got = [pool.acquire(), pool.acquire(), pool.acquire()];
    expect(new Set(got).size).toBe(3);
    expect(got.every((u) => u >= 200_000 && u < 200_003)).toBe(true);
    expect(() => pool.acquire()).toThrow(/all 3 sandbox uids are in use/);
    pool.release(got[1] as number);
    expect(pool.acquire()).toBe(got[1]);
  });
});
