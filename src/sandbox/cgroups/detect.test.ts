import { describe, expect, it } from "vitest";
import { detectLayout, parseMounts } from "./detect.js";
import { weightToShares } from "./v1.js";

const unified = `
sysfs /sys sysfs rw,nosuid,nodev,noexec,relatime 0 0
cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime,nsdelegate,memory_recursiveprot 0 0
`;

// This project's CI host: v1 controllers plus an empty cgroup2 at /sys/fs/cgroup/unified.
const hybrid = `
tmpfs /sys/fs/cgroup tmpfs rw,relatime,mode=755 0 0
cgroup /sys/fs/cgroup/cpu cgroup rw,relatime,cpu 0 0
cgroup /sys/fs/cgroup/cpuacct cgroup rw,relatime,cpuacct 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0
cgroup /sys/fs/cgroup/freezer cgroup rw,relatime,freezer 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,relatime,pids 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
`;

// systemd's classic layout co-mounts cpu with cpuacct and has no freezer here.
const legacy = `
cgroup /sys/fs/cgroup/cpu,cpuacct cgroup rw,nosuid,nodev,noexec,relatime,cpu,cpuacct 0 0
cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0
cgroup /sys/fs/cgroup/pids cgroup rw,nosuid,nodev,noexec,relatime,pids 0 0
cgroup /sys/fs/cgroup/cpuset cgroup rw,nosuid,nodev,noexec,relatime,cpuset 0 0
`;

const controllers = (map: Record<string, string[]>) => (mp: string) => map[mp];

describe("cgroup detection", () => {
  it("picks v2 when the unified hierarchy owns memory, pids and cpu", () => {
    const d = detectLayout(
      parseMounts(unified),
      controllers({ "/sys/fs/cgroup": ["cpuset", "cpu", "io", "memory", "pids"] }),
    );
    expect(d).toEqual({ version: 2, mount: "/sys/fs/cgroup" });
  });

  it("falls back to v1 on a hybrid host whose cgroup2 has no controllers", () => {
    const d = detectLayout(parseMounts(hybrid), controllers({ "/sys/fs/cgroup/unified": ["hugetlb"] }));
    expect(d).toEqual({
      version: 1,
      mounts: {
        memory: "/sys/fs/cgroup/memory",
        pids: "/sys/fs/cgroup/pids",
        cpu: "/sys/fs/cgroup/cpu",
        freezer: "/sys/fs/cgroup/freezer",
      },
    });
  });

  it("matches controllers by exact option, not prefix (cpu vs cpuset/cpuacct)", () => {
    const d = detectLayout(parseMounts(legacy), controllers({}));
    expect(d).toEqual({
      version: 1,
      mounts: {
        memory: "/sys/fs/cgroup/memory",
        pids: "/sys/fs/cgroup/pids",
        cpu: "/sys/fs/cgroup/cpu,cpuacct",
      },
    });
  });

  it("explains what is missing", () => {
    const noPids = legacy.replace(/.*pids.*\n/, "");
    const d = detectLayout(parseMounts(noPids), controllers({}));
    expect(d).toEqual({ version: "none", reason: "cgroup v1 has no pids hierarchy mounted" });
    const v2Partial = detectLayout(parseMounts(unified), controllers({ "/sys/fs/cgroup": ["memory"] }));
    expect(v2Partial).toMatchObject({
      version: "none",
      reason: expect.stringContaining("lacks the pids, cpu"),
    });
    expect(detectLayout([], controllers({}))).toMatchObject({ reason: "no cgroup filesystem is mounted" });
  });

  it("decodes octal escapes in mount points", () => {
    expect(parseMounts("cgroup /a\\040b cgroup rw,memory 0 0")[0]?.mountPoint).toBe("/a b");
  });
});

describe("cpu weight on v1", () => {
  it("maps the v2 default to the v1 default and clamps to v1's range", () => {
    expect(weightToShares(100)).toBe(1024);
    expect(weightToShares(1)).toBe(10);
    expect(weightToShares(10000)).toBe(102400);
    expect(weightToShares(0)).toBe(2);
  });
});
