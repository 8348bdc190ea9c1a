/**
 * A job's network: createJobNetwork (namespace, no-IPv6 sysctl, veth pair, the job's nft chains
 * and map elements, addresses and routes) and its destroy, one job at a time; against the floor
 * of `ip netns add` / `ip netns del` spawned from this process, interleaved sample by sample.
 * Also timed, for where the time goes: spawning `/bin/true`, and a veth pair added and deleted in
 * the host namespace. Then N setups at once and N teardowns at once (wall time), against N raw `ip netns add`/`del`.
 * Own table, prefix and pool, so a live controller (table "airlock", prefix "alk") is never
 * touched; its reaper runs before and after, so a killed run leaves nothing the next one keeps.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import { AddressPool, createJobNetwork, type JobNetwork, shortId } from "../src/network/index.js";
import { listLinks, listNamespaces, reapNetworks } from "../src/network/reaper.js";
import { log, size } from "./lib/env.js";
import { row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

const NAMES = { table: "albench", prefix: "alb" };
const POOL = "10.232.0.0/16";
const IP = "/usr/sbin/ip";

/** spawn → exit in ms; rejects on a non-zero exit. */
function timeSpawn(argv: string[]): Promise<number> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: "ignore" });
    child.on("error", reject);
    child.on("exit", (code, sig) => {
      const ms = performance.now() - t0;
      if (code === 0) resolve(ms);
      else reject(new Error(`${argv.join(" ")} exited ${code ?? sig}`));
    });
  });
}

/** Names the reaper recognises (prefix-<8 base32>), so a killed run's raw namespaces are reaped too. */
const rawNs = (i: number) => `${NAMES.prefix}-${shortId(`raw_${process.pid}_${i}`)}`;

async function leftovers(): Promise<{ namespaces: string[]; links: string[]; jobChains: number }> {
  const table = await new Promise<string>((resolve) => {
    let out = "";
    const c = spawn("/usr/sbin/nft", ["list", "table", "inet", NAMES.table], {
      stdio: ["ignore", "pipe", "ignore"],
    });
    c.stdout.on("data", (d: Buffer) => {
      out += d.toString();
    });
    c.on("close", () => resolve(out));
    c.on("error", () => resolve(""));
  });
  return {
    namespaces: await listNamespaces(NAMES),
    links: await listLinks(NAMES),
    jobChains: (table.match(/^\s*chain (pre|in|fwd)_[a-z2-7]{8} /gm) ?? []).length,
  };
}

export const networkSetup: Bench = {
  name: "network-setup",
  description: "createJobNetwork / destroy p50/p99 vs raw `ip netns add/del`; N setups at once",
  async run() {
    const n = size("NET_JOBS", 200, 30);
    const warmup = size("NET_WARMUP", 5, 2);
    const burst = size("NET_BURST", 50, 20);
    const repeats = size("NET_BURST_REPEATS", 3, 1);
    const pool = new AddressPool(POOL);
    const base = {
      pool,
      proxyPorts: { http: 23128, transparentHttp: 23129, transparentTls: 23130 },
      dnsPort: 25353,
      airlockPorts: [28443],
      mode: "enforce" as const,
      names: NAMES,
    };
    const forwardingBefore = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
    await reapNetworks(NAMES);
    let job = 0;
    const open = () => createJobNetwork({ ...base, jobId: `job_albench${process.pid}x${job++}` });
    let raw = 0;
    const live: JobNetwork[] = [];
    try {
      // The first call also creates the table (ensureBase, once per process): timed on its own.
      const t0 = performance.now();
      const first = await open();
      const firstMs = performance.now() - t0;
      await first.destroy();

      const setup: number[] = [];
      const teardown: number[] = [];
      const rawAdd: number[] = [];
      const rawDel: number[] = [];
      const spawnTrue: number[] = [];
      const vethAdd: number[] = [];
      const vethDel: number[] = [];
      for (let i = 0; i < warmup + n; i++) {
        const measure = i >= warmup;
        const doRaw = async () => {
          const name = rawNs(raw++);
          const a = await timeSpawn([IP, "netns", "add", name]);
          const d = await timeSpawn([IP, "netns", "del", name]);
          // A veth pair in the host namespace, named so the reaper would find it.
          const v = `${NAMES.prefix}${shortId(`veth_${process.pid}_${i}`)}`;
          const va = await timeSpawn([IP, "link", "add", `${v}h`, "type", "veth", "peer", "name", `${v}j`]);
          const vd = await timeSpawn([IP, "link", "del", `${v}h`]);
          const t = await timeSpawn(["/bin/true"]);
          if (measure) {
            rawAdd.push(a);
            rawDel.push(d);
            vethAdd.push(va);
            vethDel.push(vd);
            spawnTrue.push(t);
          }
        };
        const doJob = async () => {
          const s0 = performance.now();
          const net = await open();
          const s = performance.now() - s0;
          const d0 = performance.now();
          await net.destroy();
          const d = performance.now() - d0;
          if (measure) {
            setup.push(s);
            teardown.push(d);
          }
        };
        if (i % 2 === 0) {
          await doRaw();
          await doJob();
        } else {
          await doJob();
          await doRaw();
        }
        if ((i + 1) % 50 === 0) log(`network-setup: ${i + 1}/${warmup + n}`);
      }
      const afterSequential = await leftovers();

      const burstSetup: number[] = [];
      const burstTeardown: number[] = [];
      const burstRawAdd: number[] = [];
      const burstRawDel: number[] = [];
      const burstLeft: Awaited<ReturnType<typeof leftovers>>[] = [];
      for (let r = 0; r < repeats; r++) {
        const names = Array.from({ length: burst }, () => rawNs(raw++));
        let t = performance.now();
        await Promise.all(names.map((x) => timeSpawn([IP, "netns", "add", x])));
        burstRawAdd.push(performance.now() - t);
        t = performance.now();
        await Promise.all(names.map((x) => timeSpawn([IP, "netns", "del", x])));
        burstRawDel.push(performance.now() - t);

        t = performance.now();
        const settled = await Promise.allSettled(Array.from({ length: burst }, () => open()));
        burstSetup.push(performance.now() - t);
        for (const s of settled) if (s.status === "fulfilled") live.push(s.value);
        const failed = settled.filter((s) => s.status === "rejected");
        if (failed.length) throw (failed[0] as PromiseRejectedResult).reason;
        t = performance.now();
        await Promise.all(live.splice(0).map((x) => x.destroy()));
        burstTeardown.push(performance.now() - t);
        burstLeft.push(await leftovers());
        log(`network-setup: burst ${r + 1}/${repeats} setup ${Math.round(burstSetup[r] as number)} ms`);
      }

      const sAdd = summarize(rawAdd);
      const sDel = summarize(rawDel);
      const sBAdd = summarize(burstRawAdd);
      const sBDel = summarize(burstRawDel);
      const leftCount = [afterSequential, ...burstLeft].reduce(
        (a, l) => a + l.namespaces.length + l.links.length + l.jobChains,
        0,
      );
      const B = "network-setup";
      return {
        rows: [
          row(B, "spawn `/bin/true` (the per-command floor)", "ms", summarize(spawnTrue)),
          row(B, "raw `ip netns add` (spawned)", "ms", sAdd),
          row(B, "raw `ip netns del` (spawned)", "ms", sDel),
          row(B, "raw `ip link add … type veth peer …` (host netns)", "ms", summarize(vethAdd)),
          row(B, "raw `ip link del` of that veth pair", "ms", summarize(vethDel)),
          row(B, "createJobNetwork (netns + veth + nft + addresses)", "ms", summarize(setup), {
            baseline: { name: "ip netns add", value: sAdd.p50 },
          }),
          row(B, "JobNetwork.destroy (link del + nft + netns del)", "ms", summarize(teardown), {
            baseline: { name: "ip netns del", value: sDel.p50 },
          }),
          row(B, `${burst} createJobNetwork at once: wall`, "ms", summarize(burstSetup), {
            baseline: { name: `${burst} ip netns add at once`, value: sBAdd.p50 },
          }),
          row(B, `${burst} destroy at once: wall`, "ms", summarize(burstTeardown), {
            baseline: { name: `${burst} ip netns del at once`, value: sBDel.p50 },
          }),
          row(
            B,
            "leftovers (namespaces + veths + job chains)",
            "count",
            { p50: leftCount, p99: Number.NaN, n: 1 + repeats },
            { targets: [{ stat: "p50", op: "<=", value: 0 }] },
          ),
        ],
        details: {
          jobs: n,
          warmup,
          burst,
          repeats,
          firstCreateWithTableMs: firstMs,
          rawBurstAddMs: burstRawAdd,
          rawBurstDelMs: burstRawDel,
          burstSetupMs: burstSetup,
          burstTeardownMs: burstTeardown,
          leftovers: { afterSequential, afterBursts: burstLeft },
          forwardingBefore,
        },
      };
    } finally {
      await Promise.allSettled(live.map((x) => x.destroy()));
      // Raw namespaces carry reapable names: the reaper removes any a failure left.
      const reaped = await reapNetworks(NAMES);
      const forwardingAfter = (await readFile("/proc/sys/net/ipv4/ip_forward", "utf8")).trim();
      if (reaped.namespaces.length || reaped.links.length)
        log(
          `network-setup: reaper removed ${reaped.namespaces.length} namespaces, ${reaped.links.length} links`,
        );
      if (forwardingAfter !== forwardingBefore)
        log(`network-setup: ip_forward was ${forwardingBefore}, is ${forwardingAfter}`);
    }
  },
};
