/**
 * Admission decision latency: decideRunJob over a mix of allowed and denied requests, against a
 * stateless Cedar call that parses the schema and policy text on every request (what the
 * engine's preparsed cache saves).
 */
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import {
  createPolicyEngine,
  loadPolicies,
  type RunJobInput,
  runJobRequest,
  SCHEMA_TEXT,
  sampleRunJobInput,
} from "../src/policy/index.js";
import { size } from "./lib/env.js";
import { row, summarize } from "./lib/stats.js";
import type { Bench } from "./lib/types.js";

/** Each case with the decision the default policies must give it (checked, so a wrong bench fails). */
const CASES: { input: RunJobInput; allowed: boolean }[] = [
  { input: sampleRunJobInput(), allowed: true },
  { input: sampleRunJobInput({ ref: "v1.2.0", refType: "tag" }), allowed: true },
  {
    input: sampleRunJobInput({
      event: "workflow_dispatch",
      egress: { mode: "allow", allow: ["registry.npmjs.org"] },
    }),
    allowed: true,
  },
  { input: sampleRunJobInput({ environment: "production" }), allowed: true },
  { input: sampleRunJobInput({ event: "pull_request", environment: "production" }), allowed: false },
  { input: sampleRunJobInput({ event: "pull_request", permissions: { contents: "write" } }), allowed: false },
  { input: sampleRunJobInput({ privileged: true }), allowed: false },
  { input: sampleRunJobInput({ hostMounts: ["/var/run/docker.sock"] }), allowed: false },
  {
    input: sampleRunJobInput({ ref: "feature/x", refProtected: false, environment: "staging" }),
    allowed: false,
  },
];

export const policyLatency: Bench = {
  name: "policy-latency",
  description: "decideRunJob p50/p99 over allowed and denied inputs, vs stateless Cedar",
  async run() {
    const n = size("POLICY_DECISIONS", 10_000, 2_000);
    const nBase = size("POLICY_BASELINE", 1_000, 200);
    const loaded = await loadPolicies();
    const engine = createPolicyEngine(loaded);
    for (const c of CASES) {
      const d = engine.decideRunJob(c.input);
      if (d.allowed !== c.allowed) {
        throw new Error(
          `policy bench case expected ${c.allowed ? "allow" : "deny"}: ${JSON.stringify(c.input)}`,
        );
      }
    }
    for (let i = 0; i < 1000; i++)
      engine.decideRunJob((CASES[i % CASES.length] as (typeof CASES)[number]).input);

    const us: number[] = [];
    const selfReported: number[] = [];
    let allowed = 0;
    for (let i = 0; i < n; i++) {
      const c = CASES[i % CASES.length] as (typeof CASES)[number];
      // A fresh job id each time, as admission has.
      const input = { ...c.input, job: { id: `job_bench${i}`, name: c.input.job.name } };
      const t0 = performance.now();
      const d = engine.decideRunJob(input);
      us.push((performance.now() - t0) * 1000);
      selfReported.push(d.durationUs);
      if (d.allowed) allowed++;
    }

    const staticPolicies = Object.fromEntries(loaded.policies.map((p) => [p.id, p.text]));
    const base: number[] = [];
    for (let i = 0; i < nBase + 50; i++) {
      const c = CASES[i % CASES.length] as (typeof CASES)[number];
      const t0 = performance.now();
      const answer = cedar.isAuthorized({
        ...runJobRequest(c.input),
        policies: { staticPolicies },
        schema: SCHEMA_TEXT,
        validateRequest: true,
      });
      const t = (performance.now() - t0) * 1000;
      if (answer.type !== "success") throw new Error("stateless Cedar baseline failed");
      if (i >= 50) base.push(t);
    }
    const sBase = summarize(base);
    const B = "policy-latency";
    return {
      rows: [
        row(B, "stateless cedar isAuthorized (parses policies + schema per call)", "µs", sBase),
        row(
          B,
          `decideRunJob (${CASES.length} cases, ${Math.round((allowed / n) * 100)}% allowed)`,
          "µs",
          summarize(us),
          {
            baseline: { name: "stateless cedar", value: sBase.p50 },
            targets: [{ stat: "p99", op: "<=", value: 500 }],
          },
        ),
      ],
      details: { decisions: n, baselineCalls: nBase, allowed, selfReportedUs: summarize(selfReported) },
    };
  },
};
