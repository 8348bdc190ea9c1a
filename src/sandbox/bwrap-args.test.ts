import { describe, expect, it } from "vitest";
import {
  type BwrapArgsInput,
  buildBwrapArgs,
  ETC_BINDS,
  encodeArgs,
  etcFiles,
  SANDBOX_UID,
  sandboxEnv,
} from "./bwrap-args.js";

const input = (over: Partial<BwrapArgsInput> = {}): BwrapArgsInput => ({
  hostname: "job_abc",
  workspaceDir: "/data/sandboxes/job_abc",
  rootEntries: [
    { path: "/bin", kind: "symlink", target: "usr/bin" },
    { path: "/lib64", kind: "dir" },
  ],
  etcFds: { passwd: 5, group: 6, hosts: 7, hostname: 8 },
  env: { FOO: "bar baz" },
  cwd: "/workspace",
  ...over,
});

/** Pairs/triples of an option and its operands, for order-independent checks. */
function options(args: string[], name: string, arity: number): string[][] {
  const out: string[][] = [];
  args.forEach((a, i) => {
    if (a === name) out.push(args.slice(i + 1, i + 1 + arity));
  });
  return out;
}

describe("buildBwrapArgs", () => {
  const args = buildBwrapArgs(input());

  it("unshares every namespace, network included, and forbids nested user namespaces", () => {
    for (const ns of ["user", "pid", "ipc", "uts", "net", "cgroup"])
      expect(args).toContain(`--unshare-${ns}`);
    expect(args).toContain("--disable-userns");
    expect(args).not.toContain("--share-net");
    expect(args).not.toContain("--unshare-all");
  });

  it("maps the job to runner (1001), drops all caps, dies with its parent, starts a new session", () => {
    expect(options(args, "--uid", 1)).toEqual([[String(SANDBOX_UID)]]);
    expect(options(args, "--gid", 1)).toEqual([[String(SANDBOX_UID)]]);
    expect(options(args, "--cap-drop", 1)).toEqual([["ALL"]]);
    expect(options(args, "--hostname", 1)).toEqual([["job_abc"]]);
    expect(args).toContain("--die-with-parent");
    expect(args).toContain("--new-session");
    expect(args).not.toContain("--cap-add");
  });

  it("installs the seccomp filter from its fd when given one", () => {
    expect(options(buildBwrapArgs(input({ seccompFd: 12 })), "--seccomp", 1)).toEqual([["12"]]);
    expect(args).not.toContain("--seccomp");
  });

  it("binds the workspace as the only writable host path", () => {
    expect(options(args, "--bind", 2)).toEqual([["/data/sandboxes/job_abc", "/workspace"]]);
    expect(options(args, "--dev-bind", 2)).toEqual([]);
    expect(options(args, "--bind-try", 2)).toEqual([]);
    const ro = [...options(args, "--ro-bind", 2), ...options(args, "--ro-bind-try", 2)].map(([src]) => src);
    expect(ro.sort()).toEqual(["/usr", "/lib64", ...ETC_BINDS].sort());
    for (const secret of [
      "/etc/shadow",
      "/etc/sudoers",
      "/root",
      "/home",
      "/run",
      "/sys",
      "/proc",
      "/etc",
      "/",
    ]) {
      expect(ro).not.toContain(secret);
    }
    expect(args.slice(args.indexOf("--remount-ro"), args.indexOf("--remount-ro") + 2)).toEqual([
      "--remount-ro",
      "/",
    ]);
  });

  it("mirrors the host's root layout and synthesizes /etc from fds", () => {
    expect(options(args, "--symlink", 2)).toEqual([["usr/bin", "/bin"]]);
    expect(options(args, "--ro-bind-data", 2)).toEqual([
      ["5", "/etc/passwd"],
      ["6", "/etc/group"],
      ["7", "/etc/hosts"],
      ["8", "/etc/hostname"],
    ]);
    expect(options(args, "--proc", 1)).toEqual([["/proc"]]);
    expect(options(args, "--dev", 1)).toEqual([["/dev"]]);
    expect(options(args, "--tmpfs", 1)).toEqual([["/tmp"]]);
  });

  it("clears the environment before setting the step's variables", () => {
    const clear = args.indexOf("--clearenv");
    expect(clear).toBeGreaterThan(-1);
    expect(options(args, "--setenv", 2)).toEqual([["FOO", "bar baz"]]);
    expect(args.indexOf("--setenv")).toBeGreaterThan(clear);
    expect(options(args, "--chdir", 1)).toEqual([["/workspace"]]);
  });

  it("rejects NUL bytes, bad env names and relative cwd", () => {
    expect(() => buildBwrapArgs(input({ env: { X: "a\0--bind\0/\0/x" } }))).toThrow(/NUL/);
    expect(() => buildBwrapArgs(input({ env: { "A=B": "1" } }))).toThrow(/env name/);
    expect(() => buildBwrapArgs(input({ cwd: "workspace" }))).toThrow(/not absolute/);
  });
});

describe("sandbox /etc and env", () => {
  it("knows runner and the hostname, and nothing of the host", () => {
    const etc = etcFiles("job_abc");
    expect(etc.passwd).toContain("runner:x:1001:1001:runner:/workspace/.home:/bin/sh");
    expect(etc.passwd.split("\n").filter(Boolean)).toHaveLength(3);
    expect(etc.group).toContain("runner:x:1001:");
    expect(etc.hosts).toContain("127.0.0.1\tlocalhost job_abc");
    expect(etc.hostname).toBe("job_abc\n");
  });

  it("defaults PATH/HOME/USER and lets the step override them", () => {
    const env = sandboxEnv("job_abc", { PATH: "/custom", X: "1" });
    expect(env).toMatchObject({
      PATH: "/custom",
      HOME: "/workspace/.home",
      USER: "runner",
      HOSTNAME: "job_abc",
      X: "1",
    });
  });

  it("encodes --args as NUL-terminated strings", () => {
    expect(encodeArgs(["--a", "b c"]).toString()).toBe("--a\0b c\0");
  });
});
