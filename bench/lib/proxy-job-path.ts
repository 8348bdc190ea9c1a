/**
 * The proxy on a job's real path: the client runs inside a job network made by createJobNetwork
 * (its own namespace, veth pair, nftables chains), the upstream inside a second namespace this
 * benchmark makes (a host on the far side of the machine's routing, as a registry would be), and
 * the EgressProxy on the host end of the job's veth. Two ways out for the same job, in the same run:
 *   direct   the job's own passthrough (allowPassthrough: nft lets it forward to ip:port)
 *   connect  CONNECT through the proxy at the job's host-end address
 * Repetitions are paired and alternate in order.
 */
import { execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { AddressPool, createJobNetwork, type JobNetwork } from "../../src/network/index.js";
import { reapNetworks } from "../../src/network/reaper.js";
import { log } from "./env.js";
import { BENCH_HOST, type Child, startChild } from "./net.js";

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

export type JobPath = "direct" | "connect" | "relay";

export interface JobPathRates extends Record<JobPath, number[]> {
  forwardingBefore: string;
}

export async function measureJobPath(bytes: number, reps: number): Promise<JobPathRates> {
  const forwardingBefore = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
  await reapNetworks(NAMES);
  ipQuiet("link", "del", `${UP}h`);
  ipQuiet("netns", "del", UP);
  const children: Child[] = [];
  let net: JobNetwork | undefined;
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
    net = await createJobNetwork({
      jobId: `job_albenchp${process.pid}`,
      pool: new AddressPool(POOL),
      proxyPorts: { http: forward, transparentHttp: forward, transparentTls: proxy.ports.tls as number },
      dnsPort: 25354,
      // The job may reach these on its host end, as it does Airlock's own endpoints.
      airlockPorts: [relayPort],
      names: NAMES,
    });
    await net.allowPassthrough(upstreamAddr, bulk);
    const client = await startChild("client", [], { netns: net.nsName });
    children.push(client);
    const hostAddr = net.hostAddr;
    const once = async (path: JobPath): Promise<number> => {
      const opts =
        path === "direct"
          ? { host: upstreamAddr, port: bulk, expectBytes: bytes }
          : path === "relay"
            ? { host: hostAddr, port: relayPort, expectBytes: bytes }
            : { host: hostAddr, port: forward, connect: `${BENCH_HOST}:${bulk}`, expectBytes: bytes };
      const answer = (await client.ask(JSON.stringify(opts))) as { ms?: number; error?: string };
      if (answer.ms === undefined) throw new Error(`job-path ${path}: ${answer.error}`);
      return bytes / 1e6 / (answer.ms / 1000);
    };
    const paths: JobPath[] = ["direct", "connect", "relay"];
    for (const p of paths) await once(p);
    const rates: JobPathRates = { direct: [], connect: [], relay: [], forwardingBefore };
    for (let r = 0; r < reps; r++) {
      const order = r % 2 === 0 ? paths : [...paths].reverse();
      for (const p of order) rates[p].push(await once(p));
      log(
        `proxy-throughput: job path ${r + 1}/${reps} ${paths.map((p) => `${p} ${Math.round(rates[p][r] as number)}`).join(", ")} MB/s`,
      );
    }
    return rates;
  } finally {
    for (const c of children) await c.stop().catch(() => undefined);
    await net?.destroy().catch(() => undefined);
    ipQuiet("link", "del", `${UP}h`);
    ipQuiet("netns", "del", UP);
    await reapNetworks(NAMES);
    const forwardingAfter = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
    if (forwardingAfter !== forwardingBefore)
      log(`proxy-throughput: ip_forward was ${forwardingBefore}, is ${forwardingAfter}`);
  }
}
