/**
 * ID token mint and verify throughput on one core: mintIdToken (jose, WebCrypto) and
 * verifyIdToken (fast-jwt, synchronous node:crypto) back to back, one operation in flight, for
 * RUNS runs of SECONDS each; the figure is the median run. Baselines measured in the same process:
 * the bare primitive (node:crypto sign/verify of the same signing input, no JOSE), so the ratio is
 * what the JWT layer costs. EdDSA rows are informational. CPU-seconds per wall-second are kept in
 * the details to show it stayed on one core (WebCrypto signing runs each operation on a libuv
 * worker while the main thread waits; verification runs on the calling thread; pin the process
 * with `taskset -c N` to rule out a second core entirely).
 */
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from "node:crypto";
import { exportJWK, generateKeyPair, type JWK } from "jose";
import { jobClaims } from "../src/identity/claims.js";
import { mintIdToken, verifyIdToken } from "../src/identity/id-token.js";
import { localKek } from "../src/identity/master-key.js";
import { type SigningAlg, SigningKeys } from "../src/identity/signing-keys.js";
import { identityDb, pushInput } from "../src/identity/test-support.js";
import { log, quick, size } from "./lib/env.js";
import { type ResultRow, row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

const B = "identity-throughput";
const issuer = "https://airlock.example.test";
const audience = "sts.amazonaws.com";

interface Run {
  /** Operations per wall-clock second. */
  ops: number;
  /** CPU-seconds this process used per wall-clock second (1.0 = one core fully ours). */
  cpu: number;
}

/** Runs op back to back for `seconds`, `inFlight` at a time (default one). */
async function rate(op: () => Promise<unknown> | unknown, seconds: number, inFlight = 1): Promise<Run> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  let n = 0;
  const lane = async () => {
    while (performance.now() < end) {
      for (let i = 0; i < 50; i++) await op();
      n += 50;
    }
  };
  await Promise.all(Array.from({ length: inFlight }, lane));
  const wall = (performance.now() - t0) / 1000;
  const c = process.cpuUsage(c0);
  return { ops: n / wall, cpu: (c.user + c.system) / 1e6 / wall };
}

/** For rates the slow tail is the LOW end: "p99" is the slowest run. */
function rateSummary(xs: number[]) {
  const s = summarize(xs);
  return { ...s, p99: s.min };
}

const concurrent = 8;

async function measure(alg: SigningAlg, runs: number, seconds: number) {
  const db = await identityDb();
  const keys = new SigningKeys(db, { kek: localKek(Buffer.alloc(32, 7)), alg });
  await keys.ensureActive();
  const key = await keys.activeKey();
  const jwks = await keys.jwks();
  const claims = jobClaims(pushInput({ environment: "production" }));
  // Distinct tokens, verified round-robin: nothing may be reused from one verification to the next.
  const tokens: string[] = [];
  for (let i = 0; i < 256; i++) tokens.push((await mintIdToken(key, claims, { issuer, audience })).token);
  for (const t of tokens) {
    const check = await verifyIdToken(t, { issuer, audience, keys: jwks });
    if (!check.ok) throw new Error(`${alg}: fresh token did not verify: ${check.reason}`);
  }
  const token = tokens[0] as string;
  let next = 0;
  const verifyNext = () => verifyIdToken(tokens[next++ & 255] as string, { issuer, audience, keys: jwks });

  // The bare primitive on an equivalent key and the same signing input.
  const pair = await generateKeyPair(alg, { extractable: true });
  const priv = createPrivateKey({ key: (await exportJWK(pair.privateKey)) as JWK as never, format: "jwk" });
  const pub = createPublicKey({ key: (await exportJWK(pair.publicKey)) as JWK as never, format: "jwk" });
  const [h, p] = token.split(".") as [string, string];
  const input = Buffer.from(`${h}.${p}`);
  const digest = alg === "ES256" ? "sha256" : null;
  const opts = alg === "ES256" ? { dsaEncoding: "ieee-p1363" as const } : {};
  const sig = cryptoSign(digest, input, { key: priv, ...opts });

  const series = {
    mint: [] as Run[],
    verify: [] as Run[],
    verifyConcurrent: [] as Run[],
    rawSign: [] as Run[],
    rawVerify: [] as Run[],
  };
  // Warm-up: JIT and the JWKS resolver's key import.
  await rate(() => mintIdToken(key, claims, { issuer, audience }), Math.min(0.3, seconds));
  await rate(verifyNext, Math.min(0.3, seconds));
  for (let r = 0; r < runs; r++) {
    // Interleaved, so machine drift hits every series alike.
    series.mint.push(await rate(() => mintIdToken(key, claims, { issuer, audience }), seconds));
    series.verify.push(await rate(verifyNext, seconds));
    // As a server sees them. Verification is synchronous on the calling thread, so several in
    // flight should do no better than one (under WebCrypto it did: a worker's share overlapped).
    series.verifyConcurrent.push(await rate(verifyNext, seconds, concurrent));
    series.rawSign.push(await rate(() => cryptoSign(digest, input, { key: priv, ...opts }), seconds / 2));
    series.rawVerify.push(
      await rate(() => cryptoVerify(digest, input, { key: pub, ...opts }, sig), seconds / 2),
    );
  }
  await db.destroy();
  return { ...series, tokenBytes: token.length };
}

export const identityThroughput: Bench = {
  name: B,
  description: "mintIdToken / verifyIdToken ops/s on one core (ES256; EdDSA informational)",
  async run() {
    const runs = size("IDENTITY_RUNS", 5, 3);
    const seconds = size("IDENTITY_MS", 2000, 300) / 1000;
    const rows: ResultRow[] = [];
    const details: Record<string, unknown> = { runs, seconds, quick };
    for (const alg of ["ES256", "EdDSA"] as const) {
      const m = await measure(alg, runs, seconds);
      const es = alg === "ES256";
      const wall = (xs: Run[]) => rateSummary(xs.map((x) => x.ops));
      // Ops per CPU-second: what one core would do if it were ours alone (the machine is shared).
      const perCpu = (xs: Run[]) => rateSummary(xs.map((x) => x.ops / Math.max(x.cpu, 1e-6)));
      const note = `median of ${runs} runs x ${seconds} s, one op in flight; p99 = slowest run`;
      const cpuNote = "ops per CPU-second of this process (wall ops/s / CPU share)";
      const target = (value: number) =>
        es ? { targets: [{ stat: "p50" as const, op: ">=" as const, value }] } : {};
      const sm = wall(m.mint);
      const sv = wall(m.verify);
      log(`${B}: ${alg} mint ${Math.round(sm.p50)}/s, verify ${Math.round(sv.p50)}/s (wall)`);
      rows.push(
        row(B, `${alg} sign, bare node:crypto`, "ops/s", wall(m.rawSign), { note }),
        row(B, `mintIdToken ${alg}`, "ops/s", sm, {
          baseline: { name: "bare sign", value: wall(m.rawSign).p50 },
          ...target(5_000),
          note,
        }),
        row(B, `mintIdToken ${alg}, per CPU-second`, "ops/cpu-s", perCpu(m.mint), {
          baseline: { name: "bare sign /cpu-s", value: perCpu(m.rawSign).p50 },
          ...target(5_000),
          note: cpuNote,
        }),
        row(B, `${alg} verify, bare node:crypto`, "ops/s", wall(m.rawVerify), { note }),
        row(B, `verifyIdToken ${alg}`, "ops/s", sv, {
          baseline: { name: "bare verify", value: wall(m.rawVerify).p50 },
          ...target(10_000),
          note,
        }),
        row(B, `verifyIdToken ${alg}, per CPU-second`, "ops/cpu-s", perCpu(m.verify), {
          baseline: { name: "bare verify /cpu-s", value: perCpu(m.rawVerify).p50 },
          ...target(10_000),
          note: cpuNote,
        }),
        row(B, `verifyIdToken ${alg}, ${concurrent} in flight`, "ops/s", wall(m.verifyConcurrent), {
          baseline: { name: "bare verify", value: wall(m.rawVerify).p50 },
          note: `median of ${runs} runs x ${seconds} s, ${concurrent} verifications in flight`,
        }),
      );
      details[alg] = m;
    }
    return { rows, details };
  },
};
