/**
 * Attacks on "nothing survives a job": processes that dodge the kill, state left where a later job
 * (or the same uid, handed out again) could find it, and exhaustion of what the host shares.
 * Each test plays the job and asserts the attack fails. Real bwrap, real cgroups, no mocks.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { mkdtemp, readdir, rm, stat, statfs } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBwrapDriver } from "../../src/sandbox/index.js";
import { STEP_NOFILE } from "../../src/sandbox/launcher.js";
import { type Harness, harness, hostProcessesOf, isAlive, LIMITS, sh, waitFor } from "./sandbox-fixtures.js";

const UID = 205_001;

let h: Harness;

beforeAll(async () => {
  h = await harness("survival");
  await h.driver.preflight();
}, 60_000);

afterAll(async () => {
  await h?.cleanup();
});

function isZombie(pid: number): boolean {
  try {
    return /^State:\s+[ZX]/m.test(readFileSync(`/proc/${pid}/status`, "utf8"));
  } catch {
    return true;
  }
}

/** Host-side: what is left of a destroyed job's cgroup in any hierarchy. */
function cgroupDirs(jobId: string): string[] {
  const out: string[] = [];
  for (const m of readdirSync("/sys/fs/cgroup")) {
    const dir = join("/sys/fs/cgroup", m, h.cgroupName, jobId);
    if (existsSync(dir)) out.push(dir);
  }
  if (existsSync(join("/sys/fs/cgroup", h.cgroupName, jobId))) out.push(jobId);
  return out;
}

/** Host paths a job's uid could leave something in if it ever reached them. */
function hostFilesOwnedBy(uid: number): string[] {
  const found: string[] = [];
  for (const dir of ["/tmp", "/var/tmp", "/dev/shm", "/dev/mqueue"]) {
    if (!existsSync(dir)) continue;
    for (const name of readdirSync(dir)) {
      try {
        if (statSync(join(dir, name)).uid === uid) found.push(join(dir, name));
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return found;
}

describe("processes that try to outlive their job", () => {
  it("double-forked, setsid'd, SIGTERM/SIGHUP-ignoring, SIGSTOPped and ever-forking processes all die at destroy()", async () => {
    const uid = UID;
    const sb = await h.newSandbox("survivors", uid);
    const script = [
      // A classic daemon: double fork, new session, ignores the polite signals.
      "( setsid sh -c 'trap \"\" TERM HUP INT; while :; do sleep 1; done' & ) &",
      // One that stops itself: a stopped process must still be killable.
      "( sh -c 'kill -STOP $$; sleep 1000' & ) &",
      // A fork runner: its pid changes all the time, racing a kill that lists then signals.
      "( sh -c 'while :; do sh -c \"sleep 0.05\" & sleep 0.01; done' & ) &",
      "sleep 0.5; echo started",
    ].join("\n");
    // The step itself ends; with more steps to come nothing of it may keep running either.
    const step = sh(sb, `${script}\nsleep 1000`, { timeoutMs: 30_000 });
    await waitFor(async () => (await hostProcessesOf(uid)).length >= 4, 10_000);
    const before = await hostProcessesOf(uid);
    await sb.destroy();
    await step;
    expect(await hostProcessesOf(uid)).toEqual([]);
    // Killed ones may linger as zombies of the host's init for a moment; none may still run.
    expect(before.filter((pid) => isAlive(pid) && !isZombie(pid))).toEqual([]);
    expect(cgroupDirs("job_survivors")).toEqual([]);
    expect(existsSync(sb.workspaceDir)).toBe(false);
  }, 60_000);

  it("background processes do not outlive the step that started them", async () => {
    const uid = UID + 1;
    const sb = await h.newSandbox("bg", uid);
    const r = await sh(
      sb,
      "( setsid sh -c 'trap \"\" TERM HUP; sleep 1000' & ) & nohup sleep 1000 >/dev/null 2>&1 & echo $!",
    );
    expect(r.result.exitCode).toBe(0);
    // bwrap's pid-namespace init dies with the step, and the kernel kills the rest of the namespace.
    await waitFor(async () => (await hostProcessesOf(uid)).length === 0, 5_000);
    const next = await sh(sb, "ps -e -o pid=,comm= | grep -v -e ps -e sh -e grep || true");
    expect(next.stdout).not.toMatch(/sleep/);
    await sb.destroy();
  }, 30_000);

  it("cannot leave its cgroup: no /sys, a cgroup namespace, and no mount to make one", async () => {
    const sb = await h.newSandbox("cgescape", UID + 2);
    const r = await sh(
      sb,
      [
        "ls /sys 2>&1 | head -1",
        "cat /proc/self/cgroup",
        "for f in /sys/fs/cgroup/cgroup.procs /sys/fs/cgroup/pids/cgroup.procs /sys/fs/cgroup/memory/tasks; do echo $$ > $f 2>/dev/null && echo JOINED $f; done",
        "mkdir -p /tmp/cg && mount -t cgroup -o pids none /tmp/cg 2>/dev/null && echo MOUNTED",
        "mount -t cgroup2 none /tmp/cg 2>/dev/null && echo MOUNTED2",
        "echo done",
      ].join("\n"),
    );
    expect(r.stdout).not.toMatch(/JOINED|MOUNTED/);
    expect(r.stdout).toMatch(/done/);
    // Every hierarchy line shows the namespace root: the job cannot even name the host's cgroups.
    for (const line of r.stdout.split("\n").filter((l) => /^\d+:/.test(l))) {
      expect(line.split(":")[2]).toBe("/");
    }
    await sb.destroy();
  }, 30_000);
});

describe("nothing of one job is visible to the next, even with the same uid", () => {
  it("/tmp, /dev/shm, SysV IPC, POSIX message queues and abstract sockets die with the job", async () => {
    const uid = UID + 3;
    const first = await h.newSandbox("leave", uid);
    const planted = await sh(
      first,
      [
        "echo secret > /tmp/left-behind; echo secret > /dev/shm/left-behind",
        "ipcmk -M 4096 >/dev/null && ipcmk -Q >/dev/null && ipcmk -S 1 >/dev/null && echo ipc-made",
        "python3 -c \"import socket,os; s=socket.socket(socket.AF_UNIX); s.bind('\\0airlock-left'); s.listen(); print('sock-made')\" 2>/dev/null || true",
        "ls /workspace",
      ].join("\n"),
    );
    expect(planted.stdout).toMatch(/ipc-made/);
    await first.destroy();
    // Nothing on the host carries the uid: the job never reached a shared place to leave it in.
    expect(hostFilesOwnedBy(uid)).toEqual([]);
    const hostIpc = execFileSync("ipcs", ["-a"], { encoding: "utf8" });
    expect(hostIpc.split("\n").filter((l) => l.includes(String(uid)))).toEqual([]);

    const second = await h.newSandbox("find", uid);
    const found = await sh(
      second,
      [
        "cat /tmp/left-behind /dev/shm/left-behind 2>/dev/null",
        "ipcs -m -q -s | grep -c '^0x' || true",
        "grep -c airlock-left /proc/net/unix || true",
        "ls -A /workspace",
        "ls /workspace/.. 2>&1",
      ].join("\n"),
    );
    expect(found.stdout).not.toContain("secret");
    const lines = found.stdout.trim().split("\n");
    expect(lines[0]).toBe("0");
    expect(lines[1]).toBe("0");
    // A fresh workspace: the runner's home and nothing else.
    expect(lines[2]).toBe(".home");
    await second.destroy();
  }, 60_000);

  it("a workspace nested past PATH_MAX is still wiped, and the uid's leftovers are never reachable", async () => {
    const uid = UID + 4;
    const sb = await h.newSandbox("deep", uid);
    const r = await sh(
      sb,
      // Relative mkdir/chdir: no syscall ever sees the full path, which passes 8 KiB.
      'perl -e \'my $i = 0; for (1..400) { mkdir("d" x 20) && chdir("d" x 20) or last; $i++ } open(F, ">f"); symlink("/etc/shadow", "shadow"); print "depth $i\\n"\'',
      { timeoutMs: 60_000 },
    );
    expect(r.stdout).toMatch(/depth 400/);
    await sb.destroy();
    expect(existsSync(sb.workspaceDir)).toBe(false);
    // The same uid again: a clean start, and the driver still hands out sandboxes for it.
    const again = await h.newSandbox("deep2", uid);
    expect((await readdir(again.workspaceDir)).sort()).toEqual([".home"]);
    await again.destroy();
  }, 90_000);

  it("a crashed controller's deep workspace does not stop the next one's reap()", async () => {
    const uid = UID + 5;
    const sb = await h.newSandbox("deepcrash", uid);
    await sh(
      sb,
      'perl -e \'for (1..300) { mkdir("e" x 20) && chdir("e" x 20) or last }\'; sleep 1000 & echo $!',
      { timeoutMs: 60_000, expectMore: true },
    );
    // No destroy(): a new driver on the same root plays the restarted controller.
    const successor = createBwrapDriver({ rootDir: h.rootDir, cgroupName: h.cgroupName });
    const report = await successor.reap();
    expect(report.workspacesRemoved).toBeGreaterThanOrEqual(1);
    expect(existsSync(sb.workspaceDir)).toBe(false);
    expect(await hostProcessesOf(uid)).toEqual([]);
    await sb.destroy().catch(() => undefined);
  }, 90_000);
});

describe("the host stays out of the job's view", () => {
  it("env, /proc/1/environ and every /proc/*/cmdline hold nothing of the controller or the host", async () => {
    process.env.AIRLOCK_SURVIVAL_CANARY = "controller-only-canary-value";
    const sb = await h.newSandbox("envleak", UID + 6);
    const r = await sh(
      sb,
      "env; echo ---; for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/environ 2>/dev/null; echo; tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done",
    );
    delete process.env.AIRLOCK_SURVIVAL_CANARY;
    expect(r.stdout).not.toContain("controller-only-canary-value");
    expect(r.stdout).not.toContain("AIRLOCK_SANDBOX_ROOT");
    expect(r.stdout).not.toContain(h.rootDir);
    for (const name of ["SUDO_", "SSH_AUTH_SOCK", "AIRLOCK_MASTER", "AIRLOCK_TOKEN", "HOME=/root"]) {
      expect(r.stdout).not.toContain(name);
    }
    await sb.destroy();
  }, 30_000);

  it("cannot hard-link a host file into its workspace", async () => {
    const sb = await h.newSandbox("hardlink", UID + 7);
    const r = await sh(
      sb,
      "for f in /usr/bin/env /etc/ld.so.cache /etc/passwd; do ln $f /workspace/$(basename $f) 2>/dev/null && echo LINKED $f; done; echo done",
    );
    expect(r.stdout).not.toContain("LINKED");
    expect(r.stdout).toContain("done");
    await sb.destroy();
  }, 30_000);
});

describe("exhaustion", () => {
  it("/tmp is capped (half the memory limit): filling it fails with ENOSPC, the job's memory bounds it", async () => {
    const sb = await h.newSandbox("tmpfill", UID + 8);
    const r = await sh(
      sb,
      "df -B1 --output=size /tmp | tail -1; head -c 200M /dev/zero > /tmp/fill; echo rc=$?",
      {
        timeoutMs: 30_000,
      },
    );
    expect(Number(r.stdout.trim().split("\n")[0])).toBeLessThanOrEqual(LIMITS.memoryBytes / 2);
    expect(r.stdout).toMatch(/rc=1/);
    expect(r.stderr).toMatch(/No space left/);
    await sb.destroy();
  }, 60_000);

  it("descriptors: a step gets at most STEP_NOFILE per process, not the controller's limit", async () => {
    const sb = await h.newSandbox("fds", UID + 9);
    const r = await sh(sb, "ulimit -Hn; ulimit -n 1000000 2>/dev/null && echo RAISED; echo done");
    expect(Number(r.stdout.trim().split("\n")[0])).toBe(STEP_NOFILE);
    expect(r.stdout).not.toContain("RAISED");
    await sb.destroy();
  }, 30_000);

  it("huge numbers of files are wiped at destroy()", async () => {
    const sb = await h.newSandbox("inodes", UID + 10);
    const r = await sh(sb, "cd /workspace && mkdir m && cd m && seq 1 20000 | xargs touch && ls | wc -l", {
      timeoutMs: 60_000,
    });
    expect(r.stdout.trim()).toBe("20000");
    await sb.destroy();
    expect(existsSync(sb.workspaceDir)).toBe(false);
  }, 90_000);

  it("a step that brings the host disk under its reserve is killed and its files go with the job", async () => {
    const base = await mkdtemp(join(tmpdir(), "airlock-diskfloor-"));
    await rm(base, { recursive: true });
    const rootDir = join(h.rootDir, "..", "diskfloor");
    const fs = await statfs(h.rootDir);
    // A reserve just under what is free now: writing 512 MiB crosses it, whatever the disk's size.
    const reserve = fs.bavail * fs.bsize - 128 * 1024 * 1024;
    const cgroupName = `${h.cgroupName}-disk`;
    const driver = createBwrapDriver({
      rootDir,
      cgroupName,
      standbySlots: 0,
      diskReserve: { bytes: reserve },
    });
    const sb = await driver.create({
      jobId: "job_diskfill",
      workspaceDir: join(rootDir, "job_diskfill"),
      uid: UID + 11,
      limits: LIMITS,
    });
    try {
      const started = Date.now();
      const r = await sh(
        sb,
        "dd if=/dev/zero of=/workspace/fill bs=1M count=4096 status=none; sleep 30; echo survived",
        {
          timeoutMs: 60_000,
        },
      );
      expect(r.stdout).not.toContain("survived");
      expect(r.stderr).toMatch(/airlock: step killed: the filesystem holding the workspace/);
      expect(Date.now() - started).toBeLessThan(30_000);
      expect((await stat(join(sb.workspaceDir, "fill"))).size).toBeLessThan(4096 * 1024 * 1024);
    } finally {
      await sb.destroy();
      await driver.reap();
      await driver.close();
      for (const m of readdirSync("/sys/fs/cgroup")) {
        await rm(join("/sys/fs/cgroup", m, cgroupName), { recursive: false, force: true }).catch(
          () => undefined,
        );
      }
      await rm(rootDir, { recursive: true, force: true });
    }
    expect(existsSync(sb.workspaceDir)).toBe(false);
    expect(readFileSync("/proc/self/status", "utf8")).toBeTruthy();
  }, 120_000);
});
