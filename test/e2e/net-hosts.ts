/**
 * Test hosts for the egress suites: each is a network namespace this test made, wired to the host
 * by its own veth pair (`<name>h` on the host with 10.254.<subnet>.1, `<name>j` inside with
 * 10.254.<subnet>.2), running net-host-server.mjs inside. Tests talk to nothing but loopback and
 * these addresses. Also: what a data dir's network instance is called, and what of it is left.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const serverScript = resolve("test/e2e/net-host-server.mjs");

export interface HostServices {
  http?: { port: number; root: string }[];
  tcp?: number[];
  /** Answers every A query with `answer`. */
  dns?: { port: number; answer: string };
}

export interface HostLogEntry {
  kind: "http" | "tcp" | "dns";
  port: number;
  at: number;
  method?: string;
  path?: string;
  host?: string;
  name?: string;
  from?: string;
  /** The request's Authorization header, when it had one. */
  authorization?: string;
}

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

function ipQuiet(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // Already gone.
  }
}

export class TestHost {
  private child: ChildProcess | undefined;
  private readonly scratch: string;

  private constructor(
    readonly name: string,
    readonly subnet: number,
  ) {
    this.scratch = mkdtempSync(join(tmpdir(), `airlock-e2e-host-${name}-`));
  }

  /** The address inside the namespace, where the services listen. */
  get address(): string {
    return `10.254.${this.subnet}.2`;
  }

  /** The host end of the veth: an address of the host itself. */
  get hostAddress(): string {
    return `10.254.${this.subnet}.1`;
  }

  get logFile(): string {
    return join(this.scratch, "requests.jsonl");
  }

  /**
   * `name` must be unique among suites that run at once (at most 14 characters, so `<name>h`
   * fits an interface name); so must `subnet`. Never start it with "al": every Airlock table
   * (and src/network/job-network.test.ts's `alt` one) drops input from interfaces matching its own
   * prefix that it has no job for, so a test host named `alt…` goes dark while that suite runs.
   */
  static async create(name: string, subnet: number, services: HostServices): Promise<TestHost> {
    if (!/^[a-z][a-z0-9]{1,13}$/.test(name) || name.startsWith("al"))
      throw new Error(`bad test host name ${name}`);
    const host = new TestHost(name, subnet);
    // A crashed earlier run of this suite may have left them.
    ipQuiet("link", "del", `${name}h`);
    ipQuiet("netns", "del", name);
    try {
      ip("netns", "add", name);
      ip("link", "add", `${name}h`, "type", "veth", "peer", "name", `${name}j`, "netns", name);
      ip("addr", "add", `${host.hostAddress}/24`, "dev", `${name}h`);
      ip("link", "set", `${name}h`, "up");
      ip("-n", name, "link", "set", "lo", "up");
      ip("-n", name, "addr", "add", `${host.address}/24`, "dev", `${name}j`);
      ip("-n", name, "link", "set", `${name}j`, "up");
      writeFileSync(host.logFile, "");
      await host.startServer(services);
    } catch (err) {
      await host.destroy();
      throw err;
    }
    return host;
  }

  private startServer(services: HostServices): Promise<void> {
    const config = { address: this.address, log: this.logFile, lifetimeMs: 15 * 60_000, ...services };
    const child = spawn(
      "ip",
      ["netns", "exec", this.name, process.execPath, serverScript, JSON.stringify(config)],
      {
        stdio: ["ignore", "pipe", "pipe"],
      },
    );
    this.child = child;
    let out = "";
    return new Promise((res, rej) => {
      const timer = setTimeout(() => rej(new Error(`test host ${this.name} did not start: ${out}`)), 10_000);
      const onData = (d: Buffer) => {
        out += d.toString();
        if (out.includes("ready\n")) {
          clearTimeout(timer);
          res();
        }
      };
      child.stdout?.on("data", onData);
      child.stderr?.on("data", onData);
      child.on("exit", (code) => {
        clearTimeout(timer);
        rej(new Error(`test host ${this.name} exited ${code}: ${out}`));
      });
    });
  }

  /** What reached the services so far. */
  requests(): HostLogEntry[] {
    if (!existsSync(this.logFile)) return [];
    return readFileSync(this.logFile, "utf8")
      .split("\n")
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as HostLogEntry);
  }

  async destroy(): Promise<void> {
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const gone = new Promise((r) => child.once("exit", r));
      child.kill("SIGTERM");
      await Promise.race([gone, new Promise((r) => setTimeout(r, 3_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    }
    ipQuiet("link", "del", `${this.name}h`);
    ipQuiet("netns", "del", this.name);
    rmSync(this.scratch, { recursive: true, force: true });
  }
}

/** Host-wide names of a data dir's installation, as src/config/config.ts dataPaths() makes them. */
export function instanceNetworkNames(dataDir: string): { table: string; prefix: string } {
  const id = createHash("sha256").update(resolve(dataDir)).digest("hex").slice(0, 6);
  return { table: `airlock_${id}`, prefix: `alk${id.slice(0, 2)}` };
}

/**
 * What of an installation's networking exists on the host now: its job namespaces
 * (`<prefix>-xxxxxxxx`), veths (`<prefix>xxxxxxxx[hj]`) and whether its nft table is there.
 */
export function networkLeftovers(dataDir: string): { namespaces: string[]; links: string[]; table: boolean } {
  const { table, prefix } = instanceNetworkNames(dataDir);
  const namespaces = ip("netns", "list")
    .split("\n")
    .map((l) => l.split(" ")[0] ?? "")
    .filter((n) => new RegExp(`^${prefix}-[a-z2-7]{8}$`).test(n));
  const links = (JSON.parse(ip("-j", "link", "show") || "[]") as { ifname?: string }[])
    .map((l) => l.ifname ?? "")
    .filter((n) => new RegExp(`^${prefix}[a-z2-7]{8}[hj]$`).test(n));
  const tables = execFileSync("nft", ["list", "tables"], { encoding: "utf8" });
  return { namespaces, links, table: tables.split("\n").some((l) => l.trim() === `table inet ${table}`) };
}

export const noNetworkLeft = { namespaces: [], links: [], table: false };

/**
 * A docroot a test host serves: a bare repository `repo.git` cloneable over git's dumb HTTP
 * protocol, and an npm registry for one package `left-pad-test@1.0.0` (packument + tarball built
 * with `npm pack`), plus `hello.json`.
 */
export function buildRegistryRoot(origin: string): string {
  const root = mkdtempSync(join(tmpdir(), "airlock-e2e-registry-"));
  const run = (cmd: string, args: string[], cwd: string) =>
    execFileSync(cmd, args, { cwd, encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });

  writeFileSync(join(root, "hello.json"), `${JSON.stringify({ hello: "from registry.test" })}\n`);

  // git: a work tree pushed into a bare repo, then the files the dumb protocol reads.
  const work = mkdtempSync(join(tmpdir(), "airlock-e2e-gitsrc-"));
  const git = (...a: string[]) =>
    run("git", ["-c", "user.name=e2e", "-c", "user.email=e2e@airlock.invalid", ...a], work);
  git("init", "-q", "-b", "main");
  writeFileSync(join(work, "README.md"), "cloned-over-dumb-http\n");
  git("add", "-A");
  git("commit", "-q", "-m", "initial");
  run("git", ["clone", "-q", "--bare", work, join(root, "repo.git")], root);
  run("git", ["update-server-info"], join(root, "repo.git"));
  rmSync(work, { recursive: true, force: true });

  // npm: one package, packed at test time.
  const pkg = mkdtempSync(join(tmpdir(), "airlock-e2e-npmpkg-"));
  writeFileSync(
    join(pkg, "package.json"),
    JSON.stringify({ name: "left-pad-test", version: "1.0.0", main: "index.js", license: "MIT" }),
  );
  writeFileSync(
    join(pkg, "index.js"),
    'module.exports = (s, n, c = " ") => String(c).repeat(Math.max(0, n - String(s).length)) + s;\n',
  );
  const packed = JSON.parse(run("npm", ["pack", "--json", "--pack-destination", pkg], pkg)) as {
    filename: string;
    shasum: string;
    integrity: string;
  }[];
  const meta = packed[0];
  if (!meta) throw new Error("npm pack produced nothing");
  const tarballDir = join(root, "left-pad-test", "-");
  execFileSync("mkdir", ["-p", tarballDir]);
  const tarball = readFileSync(join(pkg, meta.filename));
  writeFileSync(join(tarballDir, "left-pad-test-1.0.0.tgz"), tarball);
  rmSync(pkg, { recursive: true, force: true });
  const version = {
    name: "left-pad-test",
    version: "1.0.0",
    main: "index.js",
    license: "MIT",
    dist: {
      tarball: `${origin}/left-pad-test/-/left-pad-test-1.0.0.tgz`,
      shasum: meta.shasum,
      integrity: meta.integrity,
    },
  };
  // Served as the directory's index.json: GET /left-pad-test.
  writeFileSync(
    join(root, "left-pad-test", "index.json"),
    JSON.stringify({
      name: "left-pad-test",
      "dist-tags": { latest: "1.0.0" },
      versions: { "1.0.0": version },
    }),
  );
  return root;
}
