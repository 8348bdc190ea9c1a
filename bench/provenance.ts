/**
 * Provenance: sign + write per job, and verification throughput.
 *
 * Sign + write: `writeProvenance` end to end on a file-backed SQLite (openSqlite: WAL,
 * synchronous=NORMAL) for JOBS jobs one after another, each a statement with 3 subjects, distinct
 * run/job/runner ids: build + validate the statement, canonicalise, ECDSA P-256 sign (key unsealed
 * once and cached, as in the controller), then the bundle row, 3 subject rows and the audit record
 * in one transaction. Baseline, same run: the bare node:crypto sign of the same PAE bytes.
 *
 * Verification: `verifyArtifact` (bundle parse, key lookup, signature, statement validation,
 * subject, builder, revocation sets, all four policy checks) by digest, round-robin over up to 256
 * distinct bundles, one at a time, RUNS runs of SECONDS; figure = median run, "p99" = slowest.
 * Baselines: the bare node:crypto verify of one PAE, and @sigstore/verify's Verifier.verify of
 * the same bundles (signature only, no statement checks).
 */
import { sign as cryptoSign, verify as cryptoVerify } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleFromJSON } from "@sigstore/bundle";
import { PublicKey, TrustedRoot } from "@sigstore/protobuf-specs";
import { toSignedEntity, toTrustMaterial, Verifier } from "@sigstore/verify";
import { statementPayload } from "../src/artifacts/provenance/bundle.js";
import { inTotoPayloadType, pae } from "../src/artifacts/provenance/dsse.js";
import { ProvenanceKeys } from "../src/artifacts/provenance/keys.js";
import { writeProvenance } from "../src/artifacts/provenance/publish.js";
import { buildStatement } from "../src/artifacts/provenance/statement.js";
import {
  fixtureInput,
  provenanceTestDb,
  sha256,
  testBuilderId,
} from "../src/artifacts/provenance/test-support.js";
import { verifyArtifact } from "../src/artifacts/provenance/verify.js";
import { localKek } from "../src/identity/master-key.js";
import { log, quick, size } from "./lib/env.js";
import { type ResultRow, row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

const B = "provenance";

const pad = (n: number) => n.toString(36).padStart(16, "a").slice(-16);

function jobInput(i: number) {
  return fixtureInput({
    subjects: [
      { name: "dist/app.js", digest: sha256(`app ${i}`) },
      { name: "checksums.txt", digest: sha256(`sums ${i}`) },
      { name: "sbom.cdx.json", digest: sha256(`sbom ${i}`) },
    ],
    run: { id: `run_${pad(i)}`, number: i, attempt: 1 },
    job: { id: `job_${pad(i)}`, key: "build" },
    runnerId: `rnr_${pad(i)}`,
  });
}

async function rate(op: () => unknown, seconds: number): Promise<{ ops: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let n = 0;
  while (performance.now() < end) {
    for (let i = 0; i < 50; i++) op();
    n += 50;
  }
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { ops: n / wall, cpu: (c.user + c.system) / 1e6 / wall };
}

/** For rates the slow tail is the LOW end: "p99" is the slowest run. */
function rateSummary(xs: number[]) {
  const s = summarize(xs);
  return { ...s, p99: s.min };
}

export const provenanceBench: Bench = {
  name: B,
  description: "writeProvenance per job (3 subjects, SQLite) and verifyArtifact throughput",
  async run() {
    const jobs = size("PROVENANCE_JOBS", 2000, 200);
    const warmup = size("PROVENANCE_WARMUP", 50, 20);
    const runs = size("PROVENANCE_RUNS", 5, 3);
    const seconds = size("PROVENANCE_MS", 2000, 300) / 1000;
    const dir = mkdtempSync(join(tmpdir(), "airlock-bench-prov-"));
    const db = await provenanceTestDb(join(dir, "airlock.db"));
    try {
      const keys = new ProvenanceKeys(db, { kek: localKek(Buffer.alloc(32, 5)), activeCacheMs: 60_000 });
      await keys.ensureActive();
      const key = await keys.activeKey();

      // --- sign + write, per job, interleaved with the bare sign baseline.
      const payload = pae(inTotoPayloadType, statementPayload(buildStatement(jobInput(0))));
      const write: number[] = [];
      const bare: number[] = [];
      const bundles: { json: string; digest: string }[] = [];
      for (let i = 0; i < warmup + jobs; i++) {
        const t0 = performance.now();
        const w = await writeProvenance(db, keys, jobInput(i + 1));
        const t1 = performance.now();
        cryptoSign("sha256", payload, { key: key.privateKey, dsaEncoding: "der" });
        const t2 = performance.now();
        if (i < warmup) continue;
        write.push(t1 - t0);
        bare.push(t2 - t1);
        if (bundles.length < 256) bundles.push({ json: w.json, digest: sha256(`app ${i + 1}`) });
      }
      // Where the time goes: each step alone, same inputs.
      const steps = { build: [] as number[], sign: [] as number[] };
      for (let i = 0; i < Math.min(jobs, 500); i++) {
        const t0 = performance.now();
        const st = buildStatement(jobInput(i));
        const t1 = performance.now();
        cryptoSign("sha256", pae(inTotoPayloadType, statementPayload(st)), {
          key: key.privateKey,
          dsaEncoding: "der",
        });
        steps.build.push(t1 - t0);
        steps.sign.push(performance.now() - t1);
      }
      const sw = summarize(write);
      log(`${B}: sign + write p50 ${sw.p50.toFixed(3)} ms, p99 ${sw.p99.toFixed(3)} ms`);

      // --- verification throughput.
      const trustedKeys = await keys.trustedKeys();
      const revocations = {
        keys: new Set(["0".repeat(64)]),
        runners: new Set(["rnr_revokedrevokedrev"]),
        artifacts: new Set([sha256("revoked")]),
      };
      const expectations = {
        builderId: testBuilderId,
        repo: "https://git.example.test/acme/web",
        ref: "refs/heads/main",
        workflow: ".github/workflows/release.yml",
        protectedRefOnly: true,
      };
      for (const b of bundles) {
        const r = verifyArtifact({
          bundle: b.json,
          artifact: { digest: b.digest as `sha256:${string}` },
          trustedKeys,
          revocations,
          expect: expectations,
        });
        if (!r.ok) throw new Error(`fresh bundle did not verify: ${r.message}`);
      }
      let next = 0;
      const verifyNext = () => {
        const b = bundles[next++ % bundles.length] as { json: string; digest: string };
        return verifyArtifact({
          bundle: b.json,
          artifact: { digest: b.digest as `sha256:${string}` },
          trustedKeys,
          revocations,
          expect: expectations,
        });
      };
      const sig = cryptoSign("sha256", payload, { key: key.privateKey, dsaEncoding: "der" });
      const bareVerify = () =>
        cryptoVerify("sha256", payload, { key: key.publicKey, dsaEncoding: "der" }, sig);

      const spki = key.publicKey.export({ type: "spki", format: "der" });
      const root = TrustedRoot.fromJSON({
        mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
        tlogs: [],
        certificateAuthorities: [],
        ctlogs: [],
        timestampAuthorities: [],
      });
      const verifier = new Verifier(
        toTrustMaterial(root, {
          [key.keyid]: PublicKey.fromJSON({
            rawBytes: spki.toString("base64"),
            keyDetails: "PKIX_ECDSA_P256_SHA_256",
          }),
        }),
        { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 },
      );
      let nextS = 0;
      const sigstoreNext = () =>
        verifier.verify(
          toSignedEntity(
            bundleFromJSON(JSON.parse((bundles[nextS++ % bundles.length] as { json: string }).json)),
          ),
        );

      const series = {
        verify: [] as { ops: number; cpu: number }[],
        bare: [] as { ops: number; cpu: number }[],
        sigstore: [] as { ops: number; cpu: number }[],
      };
      await rate(verifyNext, Math.min(0.3, seconds));
      await rate(sigstoreNext, Math.min(0.3, seconds));
      for (let r = 0; r < runs; r++) {
        series.verify.push(await rate(verifyNext, seconds));
        series.bare.push(await rate(bareVerify, seconds / 2));
        series.sigstore.push(await rate(sigstoreNext, seconds / 2));
      }
      const wall = (xs: { ops: number }[]) => rateSummary(xs.map((x) => x.ops));
      const sv = wall(series.verify);
      log(`${B}: verifyArtifact ${Math.round(sv.p50)}/s`);
      const note = `median of ${runs} runs x ${seconds} s, one at a time; p99 = slowest run`;
      const rows: ResultRow[] = [
        row(B, "sign + write provenance per job (3 subjects)", "ms", sw, {
          baseline: { name: "bare ECDSA sign", value: summarize(bare).p50 },
          note: `${jobs} jobs after ${warmup} warm-up, file-backed SQLite (WAL)`,
        }),
        row(B, "ECDSA P-256 verify, bare node:crypto", "ops/s", wall(series.bare), { note }),
        row(B, "@sigstore/verify Verifier.verify (signature only)", "ops/s", wall(series.sigstore), {
          baseline: { name: "bare verify", value: wall(series.bare).p50 },
          note,
        }),
        row(B, "verifyArtifact (full checks)", "ops/s", sv, {
          baseline: { name: "bare verify", value: wall(series.bare).p50 },
          note,
        }),
      ];
      const bundleBytes = bundles.map((b) => b.json.length);
      return {
        rows,
        details: {
          jobs,
          warmup,
          runs,
          seconds,
          quick,
          bundleBytes: summarize(bundleBytes),
          stepsP50Ms: {
            buildAndValidate: summarize(steps.build).p50,
            canonicaliseAndSign: summarize(steps.sign).p50,
            bareSign: summarize(bare).p50,
          },
          writeMs: sw,
          verify: series,
          slowest: write
            .map((ms, i) => ({ i, ms }))
            .sort((a, b) => b.ms - a.ms)
            .slice(0, 20),
        },
      };
    } finally {
      await db.destroy();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
