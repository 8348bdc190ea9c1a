/** Shared set-up for the sandbox security suites: real drivers, real cgroups, no mocks. */
import { chmod, mkdtemp, readdir, readFile, rm, rmdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { detectCgroups } from "../../src/sandbox/cgroups/detect.js";
import { backendFor, type CgroupBackend } from "../../src/sandbox/cgroups/index.js";
import {
  createBwrapDriver,
  type ExecRequest,
  type ExecResult,
  type OutputSink,
  type Sandbox,
  type SandboxDriver,
  type SandboxLimits,
} from "../../src/sandbox/index.js";

export const LIMITS: SandboxLimits = { memoryBytes: 128 * 1024 * 1024, pids: 128, cpuWeight: 100 };

export interface Harness {
  driver: SandboxDriver;
  rootDir: string;
  cgroupName: string;
  cgroups: CgroupBackend;
  newSandbox(name: string, uid: number, limits?: SandboxLimits): Promise<Sandbox>;
  cleanup(): Promise<void>;
}

/** Each suite gets its own root dir and cgroup parent, so one suite's reap() cannot hit another's jobs. */
export async function harness(suite: string): Promise<Harness> {
  const base = await mkdtemp(join(tmpdir(), `airlock-${suite}-`));
  await chmod(base, 0o711);
  const rootDir = join(base, "sandboxes");
  const cgroupName = `airlock-test-${suite}-${process.pid}`;
  const driver = createBwrapDriver({ rootDir, cgroupName });
  const cgroups = backendFor(await detectCgroups(), cgroupName);
  const made: Sandbox[] = [];
  return {
    driver,
    rootDir,
    cgroupName,
    cgroups,
    async newSandbox(name, uid, limits = LIMITS) {
      const sb = await driver.create({
        jobId: `job_${name}`,
        workspaceDir: join(rootDir, `job_${name}`),
        uid,
        limits,
      });
      made.push(sb);
      return sb;
    },
    async cleanup() {
      for (const sb of made) await sb.destroy().catch(() => undefined);
      await driver.reap().catch(() => undefined);
      await removeCgroupParent(cgroupName);
      await rm(base, { recursive: true, force: true });
    },
  };
}

async function removeCgroupParent(name: string): Promise<void> {
  const layout = await detectCgroups();
  const mounts = layout.version === 2 ? [layout.mount] : [...new Set(Object.values(layout.mounts))];
  for (const m of mounts) await rmdir(join(m, name)).catch(() => undefined);
}

export interface Captured {
  result: ExecResult;
  stdout: string;
  stderr: string;
}

export function collector(): OutputSink & { stdout: string; stderr: string } {
  const c = {
    stdout: "",
    stderr: "",
    write(stream: "stdout" | "stderr", chunk: Buffer) {
      c[stream] += chunk.toString();
    },
  };
  return c;
}

/** Run a /bin/sh script in the sandbox and capture its output. */
export async function sh(sb: Sandbox, script: string, extra: Partial<ExecRequest> = {}): Promise<Captured> {
  const sink = collector();
  const result = await sb.exec({ argv: ["/bin/sh", "-c", script], env: {}, ...extra }, sink);
  return { result, stdout: sink.stdout, stderr: sink.stderr };
}

/** Independent of the driver's own scan: every live process on the host owned by `uid`. */
export async function hostProcessesOf(uid: number): Promise<number[]> {
  const out: number[] = [];
  for (const name of await readdir("/proc")) {
    if (!/^\d+$/.test(name)) continue;
    const status = await readFile(`/proc/${name}/status`, "utf8").catch(() => "");
    const uidLine = status.split("\n").find((l) => l.startsWith("Uid:")) ?? "";
    const state = status.split("\n").find((l) => l.startsWith("State:")) ?? "";
    if (!state.includes("Z") && uidLine.split(/\s+/).slice(1).map(Number).includes(uid))
      out.push(Number(name));
  }
  return out;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function waitFor(cond: () => Promise<boolean> | boolean, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}
