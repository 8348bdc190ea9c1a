import { describe, expect, it } from "vitest";
import { defaultReserve, stepFloor } from "./disk-guard.js";

const GiB = 1024 ** 3;

describe("disk guard floor", () => {
  it("is 5% of the filesystem, at most 2 GiB and 50 000 inodes", () => {
    expect(defaultReserve({ bsize: 4096, blocks: (10 * GiB) / 4096, files: 100_000 })).toEqual({
      bytes: Math.floor(0.5 * GiB),
      inodes: 5_000,
    });
    expect(defaultReserve({ bsize: 4096, blocks: (1000 * GiB) / 4096, files: 10_000_000 })).toEqual({
      bytes: 2 * GiB,
      inodes: 50_000,
    });
  });

  it("holds a step to the reserve while the host is above it", () => {
    expect(
      stepFloor({ freeBytes: 80 * GiB, freeInodes: 1_000_000 }, { bytes: 2 * GiB, inodes: 50_000 }),
    ).toEqual({
      bytes: 2 * GiB,
      inodes: 50_000,
    });
  });

  it("on a host already under the reserve, to half of what was free when the step started", () => {
    // Killing every step because the operator's disk is nearly full would stop all CI.
    expect(
      stepFloor({ freeBytes: 300 * 1024 ** 2, freeInodes: 10_000 }, { bytes: 2 * GiB, inodes: 50_000 }),
    ).toEqual({
      bytes: 150 * 1024 ** 2,
      inodes: 5_000,
    });
  });

  it("ignores inodes on filesystems that have no inode table", () => {
    expect(
      stepFloor({ freeBytes: 80 * GiB, freeInodes: undefined }, { bytes: GiB, inodes: 50_000 }).inodes,
    ).toBe(0);
  });
});
