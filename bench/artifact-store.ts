/**
 * Artifact store throughput (src/artifacts/store.ts) for one large random file, beside a plain
 * copy of the same bytes in the same run.
 *
 * Upload: `ArtifactStore.put(createReadStream(file))` (hash while streaming to incoming/, rename
 * under the digest) vs a stream copy of the same file (`pipeline(createReadStream, createWriteStream)`
 * with the store's buffer sizes: the same I/O minus hashing) and `fs.copyFile` (which the kernel
 * may do without user space). Download: `store.read(digest)` (re-hashed, fails at the end on a
 * mismatch) written to a file vs a stream copy of the blob with the same 256 KiB reads. Runs interleave store and baselines so load that comes and goes hits
 * both alike; the source is read once first so every run reads it from the page cache. Also, not
 * judged: the secret scan (src/artifacts/scan) of the same bytes, what an upload adds before it
 * is stored. MB = 10^6 bytes per wall-clock second; medians of 5.
 */
import { randomBytes } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { copyFile, mkdtemp, open, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { FileScanner } from "../src/artifacts/scan/scan.js";
import { ArtifactStore, type Digest } from "../src/artifacts/store.js";
import { SecretSet } from "../src/secrets/masker/secret-set.js";
import { log, size } from "./lib/env.js";
import { row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

const B = "artifact-store";

async function writeRandom(path: string, bytes: number): Promise<void> {
  const fh = await open(path, "w", 0o600);
  try {
    const block = 4 * 1024 * 1024;
    for (let done = 0; done < bytes; done += block)
      await fh.write(randomBytes(Math.min(block, bytes - done)));
  } finally {
    await fh.close();
  }
}

/** CPU seconds (user+sys, every thread of the process) per run, keyed like the rates. */
const cpu: Record<string, number[]> = {};

async function timed(name: string, fn: () => Promise<unknown>, bytes: number): Promise<number> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await fn();
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  const list = cpu[name] ?? [];
  list.push((c.user + c.system) / 1e6);
  cpu[name] = list;
  return bytes / 1e6 / wall;
}

/** For rates the slow tail is the low end: the table's p99 column shows the slowest run. */
function rateSummary(xs: number[]) {
  const s = summarize(xs);
  return { ...s, p99: s.min };
}

export const artifactStore: Bench = {
  name: B,
  description: "artifact store upload/download of a 100 MB file vs a plain file copy in the same run",
  async run() {
    const mib = size("ARTIFACT_MIB", 100, 16);
    const runs = size("ARTIFACT_RUNS", 5, 3);
    const bytes = mib * 1024 * 1024;
    const dir = await mkdtemp(join(tmpdir(), "airlock-bench-artifacts-"));
    try {
      const src = join(dir, "source.bin");
      await writeRandom(src, bytes);
      await readFile(src); // into the page cache, for every contender alike
      const store = new ArtifactStore(join(dir, "store"));
      const copyTo = join(dir, "copy.bin");
      const downTo = join(dir, "download.bin");
      let digest: Digest | undefined;

      const put: number[] = [];
      const streamCopy: number[] = [];
      const fsCopy: number[] = [];
      const read: number[] = [];
      const readBaseline: number[] = [];
      // Each write leaves 100 MB of dirty pages whose writeback slows whatever runs next, so the
      // order within a pair alternates run by run (store first, then copy first).
      const pair = async (first: () => Promise<void>, second: () => Promise<void>, r: number) => {
        if (r % 2 === 0) {
          await first();
          await second();
        } else {
          await second();
          await first();
        }
      };
      for (let r = 0; r < runs; r++) {
        await pair(
          async () => {
            put.push(
              await timed(
                "put",
                async () => {
                  digest = (await store.put(createReadStream(src))).digest;
                },
                bytes,
              ),
            );
          },
          async () => {
            streamCopy.push(
              await timed(
                "streamCopy",
                () => pipeline(createReadStream(src), createWriteStream(copyTo, { highWaterMark: 1 << 20 })),
                bytes,
              ),
            );
            await rm(copyTo, { force: true });
          },
          r,
        );
        fsCopy.push(await timed("fsCopy", () => copyFile(src, copyTo), bytes));
        await rm(copyTo, { force: true });
        const d = digest as Digest;
        await pair(
          async () => {
            read.push(await timed("read", () => pipeline(store.read(d), createWriteStream(downTo)), bytes));
            await rm(downTo, { force: true });
          },
          async () => {
            readBaseline.push(
              await timed(
                "readBaseline",
                () =>
                  pipeline(
                    createReadStream(store.pathOf(d), { highWaterMark: 256 * 1024 }),
                    createWriteStream(downTo),
                  ),
                bytes,
              ),
            );
            await rm(downTo, { force: true });
          },
          r,
        );
        // Every contender writes a new file: outputs (and the blob) go outside the timing, or the
        // next put would pay for unlinking the previous copy of the same blob.
        await rm(store.pathOf(d), { force: true });
      }

      // The scan an upload adds: 10 secrets' needles over the same (binary) bytes, 1 MiB reads.
      const secrets = new SecretSet(
        Array.from({ length: 10 }, (_, i) => [`SECRET_${i}`, randomBytes(18).toString("base64url")] as const),
      );
      const scan: number[] = [];
      for (let r = 0; r < runs; r++) {
        scan.push(
          await timed(
            "scan",
            async () => {
              const s = new FileScanner(secrets);
              for await (const chunk of createReadStream(src, { highWaterMark: 1 << 20 }))
                s.write(chunk as Buffer);
              if (s.end().length !== 0) throw new Error(`${B}: the scan found a secret in random bytes`);
            },
            bytes,
          ),
        );
      }

      const med = (xs: number[]) => summarize(xs).p50;
      // Ratios per run (each store run against the copy right beside it), then the median: load
      // that comes and goes moves both sides of a pair alike.
      const paired = (a: number[], b: number[]) => med(a.map((x, i) => x / (b[i] as number)));
      const upRatio = paired(put, streamCopy);
      const downRatio = paired(read, readBaseline);
      // The same comparison in CPU time: what hashing costs on top of moving the bytes, whatever
      // the machine's other load (on a busy 2-core machine hashing cannot overlap the copy).
      const cpuMed = (k: string) => summarize(cpu[k] ?? []).p50;
      const upCpuRatio = cpuMed("streamCopy") / cpuMed("put");
      const downCpuRatio = cpuMed("readBaseline") / cpuMed("read");
      log(
        `${B}: put ${med(put).toFixed(0)} MB/s vs stream copy ${med(streamCopy).toFixed(0)} (${upRatio.toFixed(2)}x, CPU ${upCpuRatio.toFixed(2)}x), copyFile ${med(fsCopy).toFixed(0)}; read ${med(read).toFixed(0)} vs ${med(readBaseline).toFixed(0)} (${downRatio.toFixed(2)}x, CPU ${downCpuRatio.toFixed(2)}x); scan ${med(scan).toFixed(0)}`,
      );
      const note = `${mib} MiB random file; p99 column = slowest run`;
      return {
        rows: [
          row(B, `upload: ArtifactStore.put, ${mib} MiB`, "MB/s", rateSummary(put), {
            baseline: { name: "stream copy", value: med(streamCopy) },
            note,
          }),
          row(
            B,
            "upload ÷ stream copy (median of per-run ratios)",
            "ratio",
            { p50: upRatio, p99: upRatio, n: runs },
            {
              targets: [{ stat: "p50", op: ">=", value: 0.7 }],
            },
          ),
          row(B, `download: store.read (digest checked) to a file, ${mib} MiB`, "MB/s", rateSummary(read), {
            baseline: { name: "stream copy of the blob", value: med(readBaseline) },
            note,
          }),
          row(
            B,
            "download ÷ stream copy (median of per-run ratios)",
            "ratio",
            { p50: downRatio, p99: downRatio, n: runs },
            {
              targets: [{ stat: "p50", op: ">=", value: 0.7 }],
            },
          ),
          row(B, `baseline: stream copy, ${mib} MiB`, "MB/s", rateSummary(streamCopy), { note }),
          row(B, `baseline: fs.copyFile, ${mib} MiB`, "MB/s", rateSummary(fsCopy), {
            note: "may copy in the kernel (copy_file_range) without reading into user space",
          }),
          row(
            B,
            "upload ÷ stream copy, CPU time (medians)",
            "ratio",
            { p50: upCpuRatio, p99: upCpuRatio, n: runs },
            {
              note: "copy CPU-seconds ÷ put CPU-seconds; the hash's share of the work",
            },
          ),
          row(
            B,
            "download ÷ stream copy, CPU time (medians)",
            "ratio",
            { p50: downCpuRatio, p99: downCpuRatio, n: runs },
            { note: "copy CPU-seconds ÷ read CPU-seconds" },
          ),
          row(B, `secret scan of the same bytes, 10 secrets`, "MB/s", rateSummary(scan), {
            note: "what an upload adds before it is stored (random bytes decoded as UTF-8)",
          }),
        ],
        details: {
          mib,
          runs,
          mbps: { put, streamCopy, fsCopy, read, readBaseline, scan },
          cpuSeconds: cpu,
          upRatio,
          downRatio,
          upCpuRatio,
          downCpuRatio,
        },
      };
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
};
