/**
 * Drives the built CLI (`node bin/airlock.js`) the way a user does, against a throwaway data dir,
 * and looks at the host from outside: processes, cgroups and workspaces a job may leave behind.
 * Assumes `npm run build` has run (the test script builds before vitest).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import {
  chmodSync,
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import Database from "better-sqlite3";
import type { ArtifactInfo } from "../../src/artifacts/catalog.js";
import type { AuditRecord } from "../../src/audit/events.js";
import type { Verification } from "../../src/controller/verify.js";
import type { JobView, RunView } from "../../src/controller/views.js";
import type { Flow } from "../../src/network/proxy/flow-log.js";

export const cliPath = resolve("bin/airlock.js");
/** The default config hands job uids out from here upward. */
export const uidBase = 200_000;

export interface CliResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** A CLI process left running in the background (a follower, a controller to crash). */
export interface BackgroundCli {
  child: ChildProcess;
  output(): { stdout: string; stderr: string };
  exited: Promise<CliResult>;
}

function cliEnv(dataDir: string, extra: Record<string, string>): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, AIRLOCK_DATA_DIR: dataDir, NO_COLOR: "1" };
  // An operator's shell must not turn these tests into calls to a real server.
  delete env.AIRLOCK_SERVER;
  delete env.AIRLOCK_TOKEN;
  delete env.AIRLOCK_CONFIG;
  delete env.AIRLOCK_LOG_LEVEL;
  return { ...env, ...extra };
}

export interface AirlockOptions {
  /** Written as the installation's config file (AIRLOCK_CONFIG), e.g. `{ network: { pool } }`. */
  config?: Record<string, unknown>;
  /** More environment for every CLI call, e.g. `{ AIRLOCK_LOG_LEVEL: "info" }`. */
  env?: Record<string, string>;
}

export interface CliCallOptions {
  input?: string;
  env?: Record<string, string>;
}

export interface RunningCliServer {
  url: string;
  background: BackgroundCli;
  /** SIGTERM, then waits for the process to exit. */
  stop(): Promise<void>;
}

/** One embedded Airlock installation: a fresh data dir (0711, so job uids can reach workspaces). */
export class Airlock {
  private constructor(
    readonly dataDir: string,
    private readonly env: Record<string, string> = {},
  ) {}

  static create(name: string, opts: AirlockOptions = {}): Airlock {
    const dir = mkdtempSync(join(tmpdir(), `airlock-e2e-${name}-`));
    chmodSync(dir, 0o711);
    const env = { ...opts.env };
    if (opts.config) {
      // JSON is YAML: no second serialiser needed.
      const file = join(dir, "config.yml");
      writeFileSync(file, `${JSON.stringify(opts.config, null, 2)}\n`);
      env.AIRLOCK_CONFIG = file;
    }
    return new Airlock(dir, env);
  }

  get database(): string {
    return join(this.dataDir, "airlock.db");
  }

  workspaceDir(jobId: string): string {
    return join(this.dataDir, "sandboxes", "workspaces", jobId);
  }

  workspaces(): string[] {
    const dir = join(this.dataDir, "sandboxes", "workspaces");
    return existsSync(dir) ? readdirSync(dir) : [];
  }

  /** `input` is written to the CLI's stdin (e.g. a secret value); `env` adds to this call only. */
  start(args: string[], opts: CliCallOptions = {}): BackgroundCli {
    const child = spawn(process.execPath, [cliPath, ...args], {
      env: cliEnv(this.dataDir, { ...this.env, ...opts.env }),
      stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    });
    if (opts.input !== undefined) child.stdin?.end(opts.input);
    let stdout = "";
    let stderr = "";
    child.stdout?.setEncoding("utf8").on("data", (d: string) => {
      stdout += d;
    });
    child.stderr?.setEncoding("utf8").on("data", (d: string) => {
      stderr += d;
    });
    const exited = new Promise<CliResult>((res, rej) => {
      child.on("error", rej);
      child.on("close", (status, signal) => res({ status, signal, stdout, stderr }));
    });
    return { child, output: () => ({ stdout, stderr }), exited };
  }

  cli(...args: string[]): Promise<CliResult> {
    return this.start(args).exited;
  }

  /** A CLI call with stdin input or extra environment (e.g. AIRLOCK_SERVER/AIRLOCK_TOKEN). */
  cliWith(opts: CliCallOptions, ...args: string[]): Promise<CliResult> {
    return this.start(args, opts).exited;
  }

  /**
   * Starts `airlock server` on 127.0.0.1:`port` (0: any free port) and resolves once it prints its
   * URL. The config's identity.issuer must name the same URL for its tokens to verify there.
   */
  async startServer(port = 0): Promise<RunningCliServer> {
    const bg = this.start(["server", "--host", "127.0.0.1", "--port", String(port)]);
    const url = await new Promise<string>((res, rej) => {
      const timer = setTimeout(
        () => rej(new Error(`server did not start: ${JSON.stringify(bg.output())}`)),
        30_000,
      );
      const check = () => {
        const m = /listening on (http:\/\/\S+)/.exec(bg.output().stdout);
        if (m?.[1]) {
          clearTimeout(timer);
          res(m[1]);
        }
      };
      bg.child.stdout?.on("data", check);
      bg.exited.then((r) => {
        clearTimeout(timer);
        rej(new Error(`server exited ${r.status}: ${r.stderr}`));
      }, rej);
    });
    return {
      url,
      background: bg,
      stop: async () => {
        if (bg.child.exitCode === null && bg.child.signalCode === null) bg.child.kill("SIGTERM");
        await bg.exited;
      },
    };
  }

  /** The raw bytes of the database and its WAL and shared-memory files, as a process on the host reads them. */
  databaseBytes(): Buffer {
    return Buffer.concat(
      ["", "-wal", "-shm"]
        .map((suffix) => `${this.database}${suffix}`)
        .filter((f) => existsSync(f))
        .map((f) => readFileSync(f)),
    );
  }

  /** Runs a command that must succeed and parses its JSON output. */
  async json<T>(...args: string[]): Promise<T> {
    const r = await this.cli(...args, "--json");
    if (r.status !== 0) throw new Error(`airlock ${args.join(" ")} exited ${r.status}: ${r.stderr}`);
    return JSON.parse(r.stdout) as T;
  }

  runs(): Promise<RunView[]> {
    return this.json<RunView[]>("runs", "list", "--limit", "1000");
  }

  run(runId: string): Promise<RunView> {
    return this.json<RunView>("runs", "show", runId);
  }

  job(jobId: string): Promise<JobView> {
    return this.json<JobView>("job", jobId);
  }

  async audit(filter: { type?: string; run?: string; job?: string } = {}): Promise<AuditRecord[]> {
    const args = ["audit", "list", "--limit", "100000", "--json"];
    if (filter.type) args.push("--type", filter.type);
    if (filter.run) args.push("--run", filter.run);
    if (filter.job) args.push("--job", filter.job);
    const r = await this.cli(...args);
    if (r.status !== 0) throw new Error(`airlock audit list exited ${r.status}: ${r.stderr}`);
    return r.stdout
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as AuditRecord);
  }

  egressFlows(jobId: string): Promise<Flow[]> {
    return this.json<Flow[]>("egress", "flows", jobId);
  }

  /**
   * Reads the installation's database directly (read-only), for aggregate checks that would
   * otherwise take one CLI process per job.
   */
  query<T>(sql: string, ...params: unknown[]): T[] {
    const db = new Database(this.database, { readonly: true, fileMustExist: true });
    try {
      return db.prepare(sql).all(...params) as T[];
    } finally {
      db.close();
    }
  }

  /**
   * Read-write access to the database, for tests that play an attacker who can write the store
   * (forge a bundle, delete a key). Keep it to tampering; read with query().
   */
  tamper<T>(fn: (db: Database.Database) => T): T {
    const db = new Database(this.database, { fileMustExist: true });
    try {
      return fn(db);
    } finally {
      db.close();
    }
  }

  /** `airlock artifacts list`, optionally one run's. */
  artifacts(runId?: string): Promise<ArtifactInfo[]> {
    return this.json<ArtifactInfo[]>("artifacts", "list", ...(runId ? ["--run", runId] : []));
  }

  /** Where the content-addressed store keeps a blob (sha256/<2 hex>/<rest>). */
  blobPath(digest: string): string {
    const hex = digest.replace(/^sha256:/, "");
    return join(this.dataDir, "artifacts", "sha256", hex.slice(0, 2), hex.slice(2));
  }

  /**
   * `airlock verify <artifact> [flags] --json`: its exit status (0 verified, 3 failed) and the
   * verification it printed, which a failure prints too.
   */
  async verify(
    artifact: string,
    ...flags: string[]
  ): Promise<{ status: number | null; verification: Verification }> {
    const r = await this.cli("verify", artifact, ...flags, "--json");
    if (r.status !== 0 && r.status !== 3) {
      throw new Error(`airlock verify ${artifact} exited ${r.status}: ${r.stderr}`);
    }
    return { status: r.status, verification: JSON.parse(r.stdout) as Verification };
  }

  /** A job's step output as `airlock logs` prints it. */
  async logs(jobId: string): Promise<string> {
    const r = await this.cli("logs", jobId);
    if (r.status !== 0) throw new Error(`airlock logs ${jobId} exited ${r.status}: ${r.stderr}`);
    return r.stdout;
  }

  /** The host uid a job ran as, from its `job.running` audit record. */
  async jobUid(jobId: string): Promise<number | undefined> {
    const [rec] = await this.audit({ type: "job.running", job: jobId });
    return rec ? Number(rec.data.uid) : undefined;
  }

  cleanup(): void {
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** The run id the CLI prints first (`run run_… #N …`). */
export function runIdOf(stdout: string): string {
  const id = /^run (run_[a-z0-9]+) #/m.exec(stdout)?.[1];
  if (!id) throw new Error(`no run id in output:\n${stdout}`);
  return id;
}

export function jobByKey(run: RunView, key: string): JobView {
  const job = run.jobs?.find((j) => j.key === key);
  if (!job) throw new Error(`run ${run.id} has no job ${key}`);
  return job;
}

/** A throwaway local git repository with a `main` branch. */
export class GitRepo {
  private constructor(readonly dir: string) {}

  static create(name: string, files: Record<string, string> = {}, copyFrom?: string): GitRepo {
    const dir = mkdtempSync(join(tmpdir(), `airlock-e2e-src-${name}-`));
    const repo = new GitRepo(dir);
    repo.git("init", "-q", "-b", "main");
    if (copyFrom) cpSync(copyFrom, dir, { recursive: true });
    repo.commit(files, "initial");
    return repo;
  }

  git(...args: string[]): string {
    return execFileSync(
      "git",
      ["-C", this.dir, "-c", "user.name=e2e", "-c", "user.email=e2e@airlock.invalid", ...args],
      { encoding: "utf8" },
    );
  }

  /** Writes the files (paths relative to the repo) and commits everything. */
  commit(files: Record<string, string>, message = "change"): string {
    for (const [path, text] of Object.entries(files)) {
      const file = join(this.dir, path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, text);
    }
    this.git("add", "-A");
    this.git("commit", "-q", "--allow-empty", "-m", message);
    return this.git("rev-parse", "HEAD").trim();
  }

  cleanup(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** Live (non-zombie) host processes whose real, effective, saved or fs uid matches `wanted`. */
export function hostProcessesWhere(wanted: (uid: number) => boolean): { pid: number; uids: number[] }[] {
  const found: { pid: number; uids: number[] }[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    let status: string;
    try {
      status = readFileSync(`/proc/${entry}/status`, "utf8");
    } catch {
      continue; // Exited while we looked.
    }
    const state = /^State:\s+(\S)/m.exec(status)?.[1];
    if (state === "Z" || state === "X") continue; // A zombie holds no resources and runs nothing.
    const uids = (/^Uid:\s+(.*)$/m.exec(status)?.[1] ?? "").trim().split(/\s+/).map(Number);
    if (uids.some(wanted)) found.push({ pid: Number(entry), uids });
  }
  return found;
}

/**
 * `airlock-<instance>/<jobId>` cgroup directories of any Airlock installation, in any hierarchy
 * (v1 controllers or the v2 root).
 */
export function jobCgroups(jobId: string): string[] {
  const root = "/sys/fs/cgroup";
  const parents = (dir: string) =>
    existsSync(dir)
      ? readdirSync(dir)
          .filter((n) => n.startsWith("airlock"))
          .map((n) => join(dir, n))
      : [];
  const candidates = parents(root).map((p) => join(p, jobId));
  for (const h of readdirSync(root)) {
    for (const p of parents(join(root, h))) candidates.push(join(p, jobId));
  }
  return candidates.filter((p) => existsSync(p));
}

/**
 * What a finished job left on the host: live processes of the uid it ran as (none if it never
 * ran), its `airlock/<jobId>` cgroups and its workspace. Polls for a few seconds until all are gone,
 * so teardown that is
 * still finishing is not mistaken for a leak; what a leaking job leaves (sleep 1000) outlives the wait.
 */
export async function leftovers(airlock: Airlock, jobId: string, settleMs = 5_000) {
  const uid = await airlock.jobUid(jobId);
  const look = () => ({
    processes: uid === undefined ? [] : hostProcessesWhere((u) => u === uid),
    cgroups: jobCgroups(jobId),
    workspace: existsSync(airlock.workspaceDir(jobId)),
  });
  const until = Date.now() + settleMs;
  for (;;) {
    const found = look();
    const isClean = !found.processes.length && !found.cgroups.length && !found.workspace;
    if (isClean || Date.now() > until) return found;
    await new Promise((r) => setTimeout(r, 250));
  }
}

export const clean = { processes: [], cgroups: [], workspace: false };

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | null | false>,
  timeoutMs = 30_000,
  everyMs = 200,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > until) throw new Error(`timed out after ${timeoutMs}ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
