import { execFileSync, spawnSync } from "node:child_process";
import { chmodSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

/**
 * A host that cannot sandbox must refuse clearly, before anything is queued. Each case hides a
 * host capability in a private mount namespace (as root), so the real host is never changed.
 */
const cli = resolve("bin/airlock.js");
let dataDir: string;

beforeAll(() => {
  dataDir = mkdtempSync(join(tmpdir(), "airlock-preflight-"));
  chmodSync(dataDir, 0o711);
  const src = mkdtempSync(join(tmpdir(), "airlock-preflight-src-"));
  const git = (...a: string[]) =>
    execFileSync("git", ["-C", src, "-c", "user.name=t", "-c", "user.email=t@t.invalid", ...a]);
  git("init", "-q", "-b", "main");
  execFileSync("mkdir", ["-p", join(src, ".airlock/workflows")]);
  writeFileSync(
    join(src, ".airlock/workflows/ci.yml"),
    "on: push\njobs:\n  a:\n    runs-on: airlock\n    steps:\n      - run: echo hi\n",
  );
  git("add", "-A");
  git("commit", "-q", "-m", "x");
  execFileSync("node", [cli, "repo", "add", "t/preflight", "--source", src], {
    env: { ...process.env, AIRLOCK_DATA_DIR: dataDir },
  });
});

function runHidden(mountScript: string) {
  return spawnSync(
    "unshare",
    ["-m", "--propagation", "private", "sh", "-c", `${mountScript} && exec node "$0" run t/preflight`, cli],
    {
      env: { ...process.env, AIRLOCK_DATA_DIR: dataDir, NO_COLOR: "1" },
      encoding: "utf8",
    },
  );
}

function runsCount(): number {
  const out = execFileSync("node", [cli, "runs", "list", "--json"], {
    env: { ...process.env, AIRLOCK_DATA_DIR: dataDir },
    encoding: "utf8",
  });
  return (JSON.parse(out) as unknown[]).length;
}

function refusals(): { data: { code: string; reason: string } }[] {
  const out = execFileSync("node", [cli, "audit", "list", "--type", "controller.refused", "--json"], {
    env: { ...process.env, AIRLOCK_DATA_DIR: dataDir },
    encoding: "utf8",
  });
  return out.trim()
    ? out
        .trim()
        .split("\n")
        .map((l) => JSON.parse(l))
    : [];
}

describe("a host that cannot sandbox", () => {
  it("names missing bubblewrap, queues nothing and audits the refusal", () => {
    const r = runHidden("mount --bind /dev/null /usr/bin/bwrap");
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/bubblewrap|bwrap/);
    expect(r.stderr).toMatch(/hint: .*(setup\.sh|apt-get)/);
    expect(runsCount()).toBe(0);
    expect(readdirSync(dataDir)).not.toContain("controller.lock");
    expect(refusals().at(-1)?.data.code).toBe("SANDBOX_UNAVAILABLE");
  });

  it("names disabled user namespaces", () => {
    const zero = join(mkdtempSync(join(tmpdir(), "airlock-sysctl-")), "zero");
    writeFileSync(zero, "0\n");
    const r = runHidden(`mount --bind ${zero} /proc/sys/user/max_user_namespaces`);
    expect(r.status).toBe(5);
    expect(r.stderr).toMatch(/user namespaces are disabled \(sysctl user\.max_user_namespaces = 0\)/);
    expect(runsCount()).toBe(0);
    expect(refusals().length).toBeGreaterThanOrEqual(2);
  });
});
