/**
 * Attacks from inside a job. Each must fail; the assertions check both the attacker's view
 * (exit codes, output) and the host's (files, processes, connections).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, readFileSync, statSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sandbox } from "../../src/sandbox/index.js";
import { type Harness, harness, isAlive, sh } from "./sandbox-fixtures.js";

const UID_A = 201_001;
const UID_B = 201_002;

describe("sandbox escape attempts", () => {
  let h: Harness;
  let a: Sandbox;
  let b: Sandbox;
  let hostSleeper: ChildProcess;

  beforeAll(async () => {
    h = await harness("escape");
    await h.driver.preflight();
    a = await h.newSandbox("escape_a", UID_A);
    b = await h.newSandbox("escape_b", UID_B);
    hostSleeper = spawn("/usr/bin/sleep", ["987654"], { stdio: "ignore" });
  });

  afterAll(async () => {
    hostSleeper?.kill("SIGKILL");
    await h?.cleanup();
  });

  it("cannot read /etc/shadow or list /root, /home or other host secrets", async () => {
    const r = await sh(
      a,
      "cat /etc/shadow; echo shadow=$?; ls /root; echo root=$?; ls /home; echo home=$?; " +
        "ls /etc/sudoers /etc/gshadow /etc/ssh; echo etc=$?; ls -A /etc",
    );
    expect(r.stdout).toMatch(/shadow=[1-9]/);
    expect(r.stdout).toMatch(/root=[1-9]/);
    expect(r.stdout).toMatch(/home=[1-9]/);
    expect(r.stdout).toMatch(/etc=[1-9]/);
    expect(r.stdout).not.toMatch(/root:[^x]/); // no shadow hash leaked
    const etc = r.stdout.split("\n").slice(r.stdout.split("\n").findIndex((l) => l.startsWith("etc=")) + 1);
    expect(etc.filter(Boolean).sort()).toEqual(
      expect.arrayContaining(["group", "hostname", "hosts", "passwd"]),
    );
    expect(etc).not.toContain("shadow");
    expect(etc).not.toContain("sudoers");
  });

  it("sees no host runtime paths: /run, docker.sock, /sys, /var", async () => {
    const r = await sh(
      a,
      "for p in /run /var/run/docker.sock /sys/kernel /var /boot /srv /opt; do test -e $p && echo VISIBLE $p; done; true",
    );
    expect(r.stdout).toBe("");
  });

  it("cannot write outside /workspace, and its /tmp is private", async () => {
    const marker = `airlock-escape-${randomBytes(6).toString("hex")}`;
    const r = await sh(
      a,
      `touch /usr/${marker}; echo usr=$?; touch /etc/${marker}; echo etc=$?; mkdir /${marker}; echo root=$?; ` +
        `echo hi > /tmp/${marker}; echo tmp=$?; echo ok > /workspace/${marker}; echo ws=$?`,
    );
    expect(r.stdout).toMatch(/usr=[1-9]/);
    expect(r.stdout).toMatch(/etc=[1-9]/);
    expect(r.stdout).toMatch(/root=[1-9]/);
    expect(r.stdout).toContain("tmp=0");
    expect(r.stdout).toContain("ws=0");
    for (const p of [`/usr/${marker}`, `/etc/${marker}`, `/${marker}`, `/tmp/${marker}`])
      expect(existsSync(p)).toBe(false);
    // The workspace write is the one that must land, owned by the job uid.
    expect(statSync(join(a.workspaceDir, marker)).uid).toBe(UID_A);
    // And /tmp does not survive into the next step either.
    expect((await sh(a, `test -e /tmp/${marker} && echo LEAK; true`)).stdout).toBe("");
  });

  it("cannot read another running job's workspace, by sandbox path or by host path", async () => {
    const secret = `A-SECRET-${randomBytes(8).toString("hex")}`;
    const ac = new AbortController();
    const running = sh(a, `echo ${secret} > /workspace/secret.txt; sleep 60`, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 300));
    expect(readFileSync(join(a.workspaceDir, "secret.txt"), "utf8")).toContain(secret);
    const r = await sh(
      b,
      `cat ${a.workspaceDir}/secret.txt; ls ${h.rootDir}; cat /proc/*/root/workspace/secret.txt; ` +
        `grep -rs ${secret} /tmp /workspace /proc/*/environ; true`,
    );
    expect(r.stdout + r.stderr).not.toContain(secret);
    expect(r.stdout).not.toContain("job_escape_a");
    // From the host, as B's uid: the workspace is 0700 and the root is not listable.
    const asB = (cmd: string[]) => {
      try {
        return execFileSync(
          "/usr/bin/setpriv",
          ["--reuid", String(UID_B), "--regid", String(UID_B), "--clear-groups", ...cmd],
          {
            stdio: "pipe",
          },
        ).toString();
      } catch (e) {
        return `FAILED ${(e as { stderr?: Buffer }).stderr?.toString() ?? ""}`;
      }
    };
    expect(asB(["/usr/bin/cat", join(a.workspaceDir, "secret.txt")])).toMatch(/^FAILED.*Permission denied/s);
    expect(asB(["/usr/bin/ls", h.rootDir])).toMatch(/^FAILED.*Permission denied/s);
    expect(statSync(a.workspaceDir).mode & 0o777).toBe(0o700);
    expect(statSync(h.rootDir).mode & 0o777).toBe(0o711);
    ac.abort();
    expect((await running).result.cancelled).toBe(true);
  });

  it("sees only its own processes and cannot kill a host process", async () => {
    const pid = hostSleeper.pid as number;
    const r = await sh(
      a,
      `ps -eo pid,args; echo "procs=$(ls /proc | grep -c '^[0-9]')"; kill -9 ${pid}; echo kill=$?; cat /proc/1/cmdline | tr '\\0' ' '`,
    );
    expect(r.stdout).not.toContain("987654");
    expect(r.stdout).not.toContain("vitest");
    expect(Number(/procs=(\d+)/.exec(r.stdout)?.[1])).toBeLessThan(8);
    expect(r.stdout).toMatch(/kill=[1-9]/);
    expect(r.stdout).toContain("bwrap"); // pid 1 is the sandbox's own init, not the host's
    expect(isAlive(pid)).toBe(true);
    expect(hostSleeper.exitCode).toBeNull();
  });

  describe("network", () => {
    let server: Server;
    let port = 0;
    let connections = 0;
    beforeAll(async () => {
      server = createServer((sock) => {
        connections++;
        sock.end("hello from the host\n");
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      port = (server.address() as { port: number }).port;
    });
    afterAll(() => new Promise<void>((r) => server.close(() => r())));

    it("cannot reach a TCP server on the host's loopback", async () => {
      const r = await sh(
        a,
        `perl -MIO::Socket::INET -e 'my $s = IO::Socket::INET->new(PeerAddr => "127.0.0.1:${port}", Timeout => 2) or exit 3; print <$s>; exit 0'; echo connect=$?; cat /proc/net/dev`,
      );
      expect(r.stdout).toContain("connect=3");
      expect(r.stdout).not.toContain("hello from the host");
      expect(connections).toBe(0);
      // Only loopback exists in the job's network namespace.
      const ifaces = r.stdout
        .split("\n")
        .filter((l) => l.includes(":") && !l.includes("|") && !l.startsWith("connect"))
        .map((l) => l.split(":")[0]?.trim());
      expect(ifaces).toEqual(["lo"]);
    });
  });

  it("has no capabilities, no_new_privs set, and cannot mount, unshare or use setuid binaries", async () => {
    // A setuid-root binary planted in the workspace by the host (e.g. an unpacked artifact).
    const suid = join(a.workspaceDir, "suid-id");
    copyFileSync("/usr/bin/id", suid);
    chmodSync(suid, 0o4755);
    const r = await sh(
      a,
      [
        "grep -E '^(CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs)' /proc/self/status",
        "mkdir -p /tmp/m; mount -t tmpfs none /tmp/m; echo mount=$?",
        "unshare -r true; echo unshare_r=$?",
        "unshare -n true; echo unshare_n=$?",
        "unshare -m true; echo unshare_m=$?",
        "capsh --addamb=cap_net_admin -- -c true; echo capsh=$?",
        "su -c id root </dev/null; echo su=$?",
        "echo euid=$(/workspace/suid-id -u)",
        "grep ' /workspace ' /proc/self/mountinfo",
      ].join("\n"),
    );
    for (const cap of ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"]) {
      expect(r.stdout).toMatch(new RegExp(`${cap}:\\s+0000000000000000`));
    }
    expect(r.stdout).toMatch(/NoNewPrivs:\s+1/);
    for (const op of ["mount", "unshare_r", "unshare_n", "unshare_m", "capsh", "su"]) {
      expect(r.stdout).toMatch(new RegExp(`${op}=[1-9]`));
    }
    expect(r.stdout).toContain("euid=1001");
    expect(r.stdout).toMatch(/ \/workspace .*nosuid/);
  });

  it("holds no descriptor of the host beyond its own stdin, stdout and stderr", async () => {
    // An inherited pipe, socket or directory fd would be a handle on the host outside every mount
    // rule; list what the step has open. The glob's own directory fd is the only extra, and it is
    // already closed (empty link) by the time readlink looks.
    const r = await sh(
      a,
      // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion
      'for f in /proc/self/fd/*; do printf "%s=%s\\n" "${f##*/}" "$(readlink "$f")"; done',
    );
    const open = r.stdout.trim().split("\n");
    const beyondStdio = open.filter((l) => !/^[012]=/.test(l));
    expect(beyondStdio.length).toBeLessThanOrEqual(1);
    for (const l of beyondStdio) expect(l).toMatch(/^\d+=(\/proc\/\d+\/fd)?$/);
  });

  it("cannot smuggle bwrap options or host paths through env and argv", async () => {
    // A NUL would split one value into several --args entries; it must be refused, not passed.
    await expect(
      a.exec({ argv: ["/bin/true"], env: { X: "a\0--bind\0/\0/host" } }, { write() {} }),
    ).rejects.toMatchObject({
      code: "SANDBOX_FAILED",
    });
    const r = await sh(a, 'echo "$X"; test -e /host && echo HOST', { env: { X: "--bind / /host" } });
    expect(r.stdout).toBe("--bind / /host\n");
  });

  it("runs as an unprivileged host uid, and secrets in env stay out of the host's cmdline", async () => {
    const secret = `tok-${randomBytes(8).toString("hex")}`;
    const running = sh(a, "sleep 2", { env: { TOKEN: secret } });
    await new Promise((r) => setTimeout(r, 400));
    const pids = await h.cgroups.open("job_escape_a").pids();
    expect(pids.length).toBeGreaterThan(0);
    for (const pid of pids) {
      const status = readFileSync(`/proc/${pid}/status`, "utf8");
      expect(status).toMatch(new RegExp(`Uid:\\s+${UID_A}\\s+${UID_A}\\s+${UID_A}\\s+${UID_A}`));
      expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).not.toContain(secret);
    }
    expect((await running).result.exitCode).toBe(0);
  });
});
