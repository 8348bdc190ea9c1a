/**
 * The proxy on a job's real path: the client runs inside a job network made by createJobNetwork
 * (its own namespace, veth pair, nftables chains), the upstream inside a second namespace this
 * benchmark makes (a host on the far side of the machine's routing, as a registry would be), and
 * the EgressProxy on the host end of the job's veth. Two ways out for the same job, in the same run:
 *   direct   the job's own passthrough (allowPassthrough: nft lets it forward to ip:port)
 *   connect  CONNECT through the proxy at the job's host-end address
 * and two yardsticks at the same place: a bare Node pipe relay, and (where a C compiler is at hand)
 * the cheapest relay this machine can run (c-relay.c: threads blocking in read/write, or splice).
 * Repetitions are paired and alternate in order.
 * Then, for each rate in `links`, the same with the upstream's link shaped to that rate (tc tbf on
 * the upstream's side of its veth: the download direction), as a job's traffic leaves through a
 * real network interface: direct, CONNECT and the C relay again.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { AddressPool, createJobNetwork, type JobNetwork } from "../../src/network/index.js";
import { reapNetworks } from "../../src/network/reaper.js";
import { log } from "./env.js";
import { BENCH_HOST, type Child, cpuMs, startChild } from "./net.js";

const NAMES = { table: "albenchp", prefix: "alq" };
const POOL = "10.234.0.0/16";
/** The upstream's namespace and veth; "al…" names are left to Airlock's own tables. */
const UP = `bnup${process.pid % 10000}`;
const UP_SUBNET = "10.235.7";

function ip(...args: string[]): void {
  execFileSync("ip", args, { stdio: ["ignore", "ignore", "pipe"] });
}

function ipQuiet(...args: string[]): void {
  try {
    ip(...args);
  } catch {
    // Already gone.
  }
}

export type JobPath = "direct" | "connect" | "relay" | "c-copy" | "c-splice";

export interface JobPathRates {
  /** MB/s per repetition for each path measured (the C relays only where `cc` built them). */
  rates: Partial<Record<JobPath, number[]>>;
  /** The same with the upstream's link shaped, per tc rate ("10gbit"). */
  shaped: Record<string, Partial<Record<JobPath, number[]>>>;
  /** Per phase and path: % of one core each process used while that path's downloads ran, and
   * `machine`, the whole box's busy time (softirq included) in % of one core (200 = both cores). */
  cpuPercentOfOneCore: Record<string, Partial<Record<JobPath, Record<string, number>>>>;
  forwardingBefore: string;
}

/** Busy (non-idle, non-iowait) time of the whole machine so far, in ms. */
function machineBusyMs(): number {
  const line = readFileSync("/proc/stat", "utf8").split("\n")[0] as string;
  const f = line.trim().split(/\s+/).slice(1).map(Number);
  const total = f.slice(0, 8).reduce((a, b) => a + b, 0);
  return (total - (f[3] as number) - (f[4] as number)) * 10;
}

const cRelaySource = join(dirname(fileURLToPath(import.meta.url)), "c-relay.c");

/** Compiles c-relay.c into `dir`; undefined (and a log line) when there is no C compiler. */
function buildCRelay(dir: string): string | undefined {
  const out = join(dir, "c-relay");
  try {
    execFileSync("cc", ["-O2", "-pthread", "-o", out, cRelaySource], { stdio: ["ignore", "ignore", "pipe"] });
    return out;
  } catch (e) {
    log(`proxy-throughput: no C relay yardstick (cc failed: ${(e as Error).message.split("\n")[0]})`);
    return undefined;
  }
}

/** Starts the C relay and waits for its port line. */
function startCRelay(bin: string, mode: "copy" | "splice", upstream: string, port: number): Promise<Child> {
  return new Promise((resolve, reject) => {
    const child: ChildProcess = spawn(bin, ["0.0.0.0", upstream, String(port), mode], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    child.once("error", reject);
    child.once("exit", (code) => reject(new Error(`c-relay exited ${code} before ready`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).once("line", (line) => {
      child.removeAllListeners("exit");
      const exited = new Promise<void>((r) => child.once("exit", () => r()));
      resolve({
        ports: JSON.parse(line) as Record<string, number>,
        pid: child.pid as number,
        ask: () => Promise.reject(new Error("c-relay answers nothing")),
        async stop() {
          if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
          await exited;
        },
      });
    });
  });
}

export async function measureJobPath(bytes: number, reps: number, links: string[]): Promise<JobPathRates> {
  const forwardingBefore = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
  await reapNetworks(NAMES);
  ipQuiet("link", "del", `${UP}h`);
  ipQuiet("netns", "del", UP);
  const children: Child[] = [];
  let net: JobNetwork | undefined;
  const scratch = await mkdtemp(join(tmpdir(), "bench-c-relay-"));
  try {
    ip("netns", "add", UP);
    ip("link", "add", `${UP}h`, "type", "veth", "peer", "name", `${UP}j`, "netns", UP);
    ip("addr", "add", `${UP_SUBNET}.1/24`, "dev", `${UP}h`);
    ip("link", "set", `${UP}h`, "up");
    ip("-n", UP, "link", "set", "lo", "up");
    ip("-n", UP, "addr", "add", `${UP_SUBNET}.2/24`, "dev", `${UP}j`);
    ip("-n", UP, "link", "set", `${UP}j`, "up");
    ip("-n", UP, "route", "add", "default", "via", `${UP_SUBNET}.1`);
    const upstreamAddr = `${UP_SUBNET}.2`;

    const src = await startChild("source", [bytes], {
      netns: UP,
      env: { BENCH_LISTEN_HOST: upstreamAddr },
    });
    children.push(src);
    const bulk = src.ports.bulk as number;
    // Listening on every host address: the job's host-end address exists only once the job
    // network does, and the job network needs the proxy's port first.
    const proxy = await startChild("proxy", [src.ports.bulkTls as number, bulk], {
      env: { BENCH_LISTEN_HOST: "0.0.0.0", BENCH_UPSTREAM_ADDR: upstreamAddr, BENCH_ANY_CLIENT: "1" },
    });
    children.push(proxy);
    const forward = proxy.ports.forward as number;
    const relay = await startChild("relay", [bulk], {
      env: { BENCH_LISTEN_HOST: "0.0.0.0", BENCH_UPSTREAM_ADDR: upstreamAddr },
    });
    children.push(relay);
    const relayPort = relay.ports[String(bulk)] as number;
    const cRelayBin = buildCRelay(scratch);
    const cPorts: Partial<Record<JobPath, number>> = {};
    const pids: Record<string, number> = { source: src.pid, proxy: proxy.pid, relay: relay.pid };
    if (cRelayBin) {
      for (const mode of ["copy", "splice"] as const) {
        const c = await startCRelay(cRelayBin, mode, upstreamAddr, bulk);
        children.push(c);
        cPorts[`c-${mode}`] = c.ports[String(bulk)] as number;
        pids[`c-${mode}`] = c.pid;
      }
    }
    net = await createJobNetwork({
      jobId: `job_albenchp${process.pid}`,
      pool: new AddressPool(POOL),
      proxyPorts: { http: forward, transparentHttp: forward, transparentTls: proxy.ports.tls as number },
      dnsPort: 25354,
      // The job may reach these on its host end, as it does Airlock's own endpoints.
      airlockPorts: [relayPort, ...Object.values(cPorts)],
      names: NAMES,
    });
    await net.allowPassthrough(upstreamAddr, bulk);
    const client = await startChild("client", [], { netns: net.nsName });
    children.push(client);
    pids.client = client.pid;
    const cpu: JobPathRates["cpuPercentOfOneCore"] = {};
    const hostAddr = net.hostAddr;
    const once = async (path: JobPath): Promise<number> => {
      const opts =
        path === "direct"
          ? { host: upstreamAddr, port: bulk, expectBytes: bytes }
          : path === "connect"
            ? { host: hostAddr, port: forward, connect: `${BENCH_HOST}:${bulk}`, expectBytes: bytes }
            : {
                host: hostAddr,
                port: path === "relay" ? relayPort : (cPorts[path] as number),
                expectBytes: bytes,
              };
      const answer = (await client.ask(JSON.stringify(opts))) as { ms?: number; error?: string };
      if (answer.ms === undefined) throw new Error(`job-path ${path}: ${answer.error}`);
      return bytes / 1e6 / (answer.ms / 1000);
    };
    const measure = async (paths: JobPath[], label: string) => {
      for (const p of paths) await once(p);
      const rates: Partial<Record<JobPath, number[]>> = Object.fromEntries(paths.map((p) => [p, []]));
      const used = new Map<JobPath, { ms: number; cpu: Record<string, number> }>();
      for (let r = 0; r < reps; r++) {
        const order = r % 2 === 0 ? paths : [...paths].reverse();
        for (const p of order) {
          const before = {
            ...Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)])),
            machine: machineBusyMs(),
          };
          const t0 = performance.now();
          rates[p]?.push(await once(p));
          const u = used.get(p) ?? { ms: 0, cpu: {} };
          u.ms += performance.now() - t0;
          const after = {
            ...Object.fromEntries(Object.entries(pids).map(([k, pid]) => [k, cpuMs(pid)])),
            machine: machineBusyMs(),
          };
          for (const [k, v] of Object.entries(after))
            u.cpu[k] = (u.cpu[k] ?? 0) + v - (before[k as keyof typeof before] as number);
          used.set(p, u);
        }
        log(
          `proxy-throughput: ${label} ${r + 1}/${reps} ${paths.map((p) => `${p} ${Math.round(rates[p]?.[r] as number)}`).join(", ")} MB/s`,
        );
      }
      cpu[label] = Object.fromEntries(
        [...used].map(([p, u]) => [
          p,
          Object.fromEntries(Object.entries(u.cpu).map(([k, v]) => [k, Math.round((v / u.ms) * 100)])),
        ]),
      );
      return rates;
    };
    const cPaths = Object.keys(cPorts) as JobPath[];
    const result: JobPathRates = {
      rates: await measure(["direct", "connect", "relay", ...cPaths], "job path"),
      shaped: {},
      cpuPercentOfOneCore: cpu,
      forwardingBefore,
    };
    for (const rate of links) {
      // A token bucket as deep as a few GSO bursts: the rate holds, a 64 KB super-packet passes whole.
      execFileSync(
        "ip",
        [
          "netns",
          "exec",
          UP,
          "tc",
          "qdisc",
          "replace",
          "dev",
          `${UP}j`,
          "root",
          "tbf",
          "rate",
          rate,
          "burst",
          "4mb",
          "latency",
          "20ms",
        ],
        { stdio: ["ignore", "ignore", "pipe"] },
      );
      result.shaped[rate] = await measure(
        ["direct", "connect", ...cPaths.filter((p) => p === "c-copy")],
        `job path at ${rate}`,
      );
    }
    return result;
  } finally {
    for (const c of children) await c.stop().catch(() => undefined);
    await net?.destroy().catch(() => undefined);
    ipQuiet("link", "del", `${UP}h`);
    ipQuiet("netns", "del", UP);
    await reapNetworks(NAMES);
    await rm(scratch, { recursive: true, force: true });
    const forwardingAfter = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
    if (forwardingAfter !== forwardingBefore)
      log(`proxy-throughput: ip_forward was ${forwardingBefore}, is ${forwardingAfter}`);
  }
}
