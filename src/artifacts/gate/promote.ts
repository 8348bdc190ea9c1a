/**
 * The promotion gate: `airlock promote ARTIFACT --to CHANNEL`. The caller has verified the
 * artifact (signature, subject digest, provenance) and hands over the facts of its statement;
 * the gate refuses revoked artifacts, runners and keys, asks Cedar (`Promote`, see
 * src/policy/README.md), and records the decision, allowed or not, with its audit event in one
 * transaction: `artifact.promoted` or `artifact.promotion_denied`.
 */
import { randomUUID } from "node:crypto";
import { z } from "zod";
import { appendAudit } from "../../audit/log.js";
import { type Clock, systemClock } from "../../clock.js";
import { AirlockError } from "../../errors.js";
import type { PromotionFacts } from "../../policy/context.js";
import type { Decision, PolicyEngine } from "../../policy/engine.js";
import { type Digest, parseDigest } from "../store.js";
import { revocationList } from "./revocations.js";
import { type ArtifactPromotionTable, auditExecutor, type GateDb, type GateExecutor } from "./tables.js";

export interface PromoteDeps {
  db: GateDb;
  engine: PolicyEngine;
  clock?: Clock;
}

/** The facts of a verified provenance statement, plus the signing key's id when known. */
export type VerifiedFacts = PromotionFacts & { keyId?: string | undefined };

export interface PromoteRequest {
  artifactDigest: string;
  channel: string;
  verified: VerifiedFacts;
}

export interface Principal {
  id: string;
  roles: readonly string[];
}

export interface Promotion {
  id: string;
  artifactDigest: Digest;
  channel: string;
  allowed: boolean;
  /** Policy ids that decided, or `revoked:artifact|runner|key` when the revocation list did. */
  policies: string[];
  errors: string[];
  facts: VerifiedFacts;
  promotedBy: string;
  promotedAt: string;
}

const CHANNEL = /^[a-z0-9][a-z0-9._-]{0,62}$/;

const factsSchema = z.object({
  repo: z.string().min(1),
  ref: z.string().min(1),
  refProtected: z.boolean(),
  event: z.string().min(1),
  workflow: z.string(),
  builderId: z.string().min(1),
  runnerId: z.string(),
  sha: z.string().optional(),
  keyId: z.string().optional(),
});

/**
 * Decides and records a promotion. Returns the record when allowed; when denied, records and
 * audits the refusal, then throws POLICY_DENIED naming the policies (or revocations) that decided.
 */
export async function promote(
  deps: PromoteDeps,
  req: PromoteRequest,
  principal: Principal,
): Promise<Promotion> {
  const digest = `sha256:${parseDigest(req.artifactDigest)}` as Digest;
  if (!CHANNEL.test(req.channel)) {
    throw new AirlockError("REQUEST_INVALID", `"${req.channel}" is not a channel name`, {
      hint: "channel names are lower-case letters, digits, '.', '_' and '-', e.g. production or staging",
    });
  }
  const parsed = factsSchema.safeParse(req.verified);
  if (!parsed.success) {
    throw new AirlockError(
      "ARTIFACT_INVALID",
      "the artifact's provenance lacks the facts promotion decides on",
      {
        details: { issues: parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`) },
      },
    );
  }
  const facts: VerifiedFacts = parsed.data;
  const clock = deps.clock ?? systemClock;

  const promotion = await deps.db.transaction().execute(async (trx) => {
    const revoked = await revokedReasons(trx, digest, facts);
    const decision: Pick<Decision, "allowed" | "reasons" | "errors"> =
      revoked.length > 0
        ? { allowed: false, reasons: revoked, errors: [] }
        : deps.engine.decidePromote({
            actor: { id: principal.id, roles: [...principal.roles] },
            channel: req.channel,
            artifact: digest,
            facts,
          });
    const row: ArtifactPromotionTable = {
      id: `prm_${randomUUID().replace(/-/g, "")}`,
      artifact_digest: digest,
      channel: req.channel,
      allowed: decision.allowed ? 1 : 0,
      policies: JSON.stringify(decision.reasons),
      errors: JSON.stringify(decision.errors),
      facts: JSON.stringify(facts),
      promoted_by: principal.id,
      promoted_at: clock.now().toISOString(),
    };
    await trx.insertInto("artifact_promotions").values(row).execute();
    await appendAudit(
      auditExecutor(trx),
      {
        type: decision.allowed ? "artifact.promoted" : "artifact.promotion_denied",
        actor: principal.id,
        runnerId: facts.runnerId || null,
        data: {
          promotion: row.id,
          artifact: digest,
          channel: req.channel,
          policies: decision.reasons,
          errors: decision.errors,
          repo: facts.repo,
          ref: facts.ref,
          refProtected: facts.refProtected,
          event: facts.event,
          workflow: facts.workflow,
          builderId: facts.builderId,
        },
      },
      clock,
    );
    return toPromotion(row);
  });
  if (!promotion.allowed) throw promotionDeniedError(promotion);
  return promotion;
}

async function revokedReasons(db: GateExecutor, digest: Digest, facts: VerifiedFacts): Promise<string[]> {
  const list = await revocationList(db);
  const out: string[] = [];
  if (list.artifacts.has(digest)) out.push("revoked:artifact");
  if (facts.runnerId && list.runners.has(facts.runnerId)) out.push("revoked:runner");
  if (facts.keyId && list.keys.has(facts.keyId)) out.push("revoked:key");
  return out;
}

export function promotionDeniedError(p: Promotion): AirlockError {
  const what = `promotion of ${p.artifactDigest.slice(0, 19)}… to ${p.channel}`;
  const revoked = p.policies.filter((r) => r.startsWith("revoked:")).map((r) => r.slice("revoked:".length));
  const message =
    revoked.length > 0
      ? `${what} denied: the ${revoked.join(" and ")} ${revoked.length > 1 ? "are" : "is"} revoked`
      : p.policies.length > 0
        ? `${what} denied by policy ${p.policies.join(", ")}`
        : `${what} denied: no policy permits it`;
  return new AirlockError("POLICY_DENIED", message, {
    hint:
      p.policies.length === 0
        ? "by default a channel takes artifacts built from a protected ref (policy promote-protected-ref); a policy file can permit others for a channel"
        : "see the promotion record; policies live in the built-ins and the policy directory",
    details: { promotion: p.id, reasons: p.policies, errors: p.errors },
  });
}

export interface PromotionQuery {
  channel?: string;
  artifactDigest?: string;
  /** Only allowed (true) or refused (false) decisions. */
  allowed?: boolean;
  limit?: number;
}

/** Promotion decisions, newest first. */
export async function listPromotions(db: GateExecutor, q: PromotionQuery = {}): Promise<Promotion[]> {
  let query = db
    .selectFrom("artifact_promotions")
    .selectAll()
    .orderBy("promoted_at", "desc")
    .orderBy("id", "desc");
  if (q.channel !== undefined) query = query.where("channel", "=", q.channel);
  if (q.artifactDigest !== undefined) query = query.where("artifact_digest", "=", q.artifactDigest);
  if (q.allowed !== undefined) query = query.where("allowed", "=", q.allowed ? 1 : 0);
  if (q.limit !== undefined) query = query.limit(q.limit);
  return (await query.execute()).map(toPromotion);
}

/** What a channel currently holds: its latest allowed promotion, if any. */
export async function currentPromotion(db: GateExecutor, channel: string): Promise<Promotion | undefined> {
  const [latest] = await listPromotions(db, { channel, allowed: true, limit: 1 });
  return latest;
}

function toPromotion(r: ArtifactPromotionTable): Promotion {
  return {
    id: r.id,
    artifactDigest: r.artifact_digest as Digest,
    channel: r.channel,
    allowed: Number(r.allowed) === 1,
    policies: JSON.parse(r.policies) as string[],
    errors: JSON.parse(r.errors) as string[],
    facts: JSON.parse(r.facts) as VerifiedFacts,
    promotedBy: r.promoted_by,
    promotedAt: r.promoted_at,
  };
}
