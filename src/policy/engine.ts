/**
 * The evaluator. Schema and policy set are preparsed into cedar-wasm's per-thread cache once; each
 * decision then only ships the request and three small entities across the wasm boundary.
 */
import { createHash } from "node:crypto";
import { performance } from "node:perf_hooks";
import * as cedar from "@cedar-policy/cedar-wasm/nodejs";
import { AirlockError } from "../errors.js";
import {
  type CedarRequest,
  type GetSecretInput,
  getSecretRequest,
  type PromoteInput,
  promoteRequest,
  type RunJobInput,
  runJobRequest,
} from "./context.js";
import type { LoadedPolicies } from "./load.js";
import { SCHEMA_TEXT } from "./schema.js";
import type { LoadedPolicy } from "./source.js";

export interface Decision {
  allowed: boolean;
  /**
   * Ids of the policies that decided: the matching forbids (or errored forbids, see below) on
   * deny, the matching permits on allow. Empty on deny means no permit matched.
   */
  reasons: string[];
  /** Evaluation errors as `policy-id: message`; never contains secret material. */
  errors: string[];
  durationUs: number;
}

export interface PolicyEngine {
  readonly policies: readonly LoadedPolicy[];
  decideRunJob(input: RunJobInput): Decision;
  /** May this job (its verified token's claims) read this stored secret? Deny by default. */
  decideGetSecret(input: GetSecretInput): Decision;
  /** May this actor promote an artifact with this (verified) provenance to this channel? */
  decidePromote(input: PromoteInput): Decision;
}

const sha256 = (s: string): string => createHash("sha256").update(s).digest("hex").slice(0, 32);

// The wasm cache has no eviction, so names are content hashes: reloading an unchanged policy set
// reuses its slot instead of growing the cache.
const schemaName = `airlock-schema-${sha256(SCHEMA_TEXT)}`;
let schemaReady = false;

function preparse(answer: cedar.CheckParseAnswer, what: string): void {
  if (answer.type === "failure") {
    throw new AirlockError(
      "POLICY_INVALID",
      `cannot preparse ${what}: ${answer.errors.map((e) => e.message).join("; ")}`,
    );
  }
}

export function createPolicyEngine(loaded: LoadedPolicies): PolicyEngine {
  if (!schemaReady) {
    preparse(cedar.preparseSchema(schemaName, SCHEMA_TEXT), "the Airlock schema");
    schemaReady = true;
  }
  const staticPolicies = Object.fromEntries(loaded.policies.map((p) => [p.id, p.text]));
  const setId = `airlock-policies-${sha256(JSON.stringify(staticPolicies))}`;
  preparse(cedar.preparsePolicySet(setId, { staticPolicies }), "the policy set");
  const forbids = new Set(loaded.policies.filter((p) => p.effect === "forbid").map((p) => p.id));

  function decide(started: number, req: CedarRequest): Decision {
    const answer = cedar.statefulIsAuthorized({
      ...req,
      preparsedPolicySetId: setId,
      preparsedSchemaName: schemaName,
      // Entities and context are checked against the schema too; a malformed request denies.
      validateRequest: true,
    });
    const durationUs = Math.round((performance.now() - started) * 1000);
    if (answer.type === "failure") {
      return { allowed: false, reasons: [], errors: answer.errors.map((e) => e.message), durationUs };
    }
    const { decision, diagnostics } = answer.response;
    const errors = diagnostics.errors.map((e) => `${e.policyId}: ${e.error.message}`);
    // Cedar skips a policy whose condition errors. For a forbid that would fail open, so a
    // forbid that could not be evaluated denies as if it had matched.
    const erroredForbids = diagnostics.errors.map((e) => e.policyId).filter((id) => forbids.has(id));
    if (decision === "allow" && erroredForbids.length > 0) {
      return { allowed: false, reasons: erroredForbids, errors, durationUs };
    }
    return { allowed: decision === "allow", reasons: [...diagnostics.reason], errors, durationUs };
  }

  function decideRunJob(input: RunJobInput): Decision {
    return decide(performance.now(), runJobRequest(input));
  }

  function decideGetSecret(input: GetSecretInput): Decision {
    return decide(performance.now(), getSecretRequest(input));
  }

  function decidePromote(input: PromoteInput): Decision {
    return decide(performance.now(), promoteRequest(input));
  }

  return { policies: loaded.policies, decideRunJob, decideGetSecret, decidePromote };
}

/** The error admission raises for a denied decision. */
export function deniedError(decision: Decision): AirlockError {
  const by =
    decision.reasons.length > 0 ? `policy ${decision.reasons.join(", ")}` : "no policy permitting it";
  return new AirlockError("POLICY_DENIED", `job denied by ${by}`, {
    hint: "see the job's decision record; policies live in the built-ins and the policy directory",
    details: { reasons: decision.reasons, errors: decision.errors },
  });
}
