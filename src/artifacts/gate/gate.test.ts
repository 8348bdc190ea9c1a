import type { Kysely } from "kysely";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listAudit } from "../../audit/log.js";
import { verifyAudit } from "../../audit/verify.js";
import { AirlockError } from "../../errors.js";
import { compilePolicies, createPolicyEngine, type PolicyEngine } from "../../policy/index.js";
import { openSqlite } from "../../store/database.js";
import * as gateMigration from "../../store/migrations/0008_artifact_gate.js";
import {
  currentPromotion,
  listPromotions,
  listRevocations,
  promote,
  revocationList,
  revoke,
  type VerifiedFacts,
} from "./index.js";
import type { GateDb } from "./tables.js";

const DIGEST = `sha256:${"a1".repeat(32)}` as const;
const OTHER = `sha256:${"b2".repeat(32)}` as const;
const alice = { id: "alice", roles: ["release-manager"] };
const clock = { now: () => new Date("2025-03-04T05:06:07.000Z") };

const facts = (over: Partial<VerifiedFacts> = {}): VerifiedFacts => ({
  repo: "acme/web",
  ref: "refs/heads/main",
  refProtected: true,
  event: "push",
  workflow: ".github/workflows/release.yml",
  builderId: "https://airlock.example/builders/self-hosted@v1",
  runnerId: "rnr_abc234",
  sha: "0123456789abcdef0123456789abcdef01234567",
  keyId: "key-2025-01",
  ...over,
});

let db: GateDb;
let engine: PolicyEngine;

beforeEach(async () => {
  const base = await openSqlite(":memory:");
  // Until the store registers 0008, the test applies it itself.
  const hasTable = (await base.introspection.getTables()).some((t) => t.name === "artifact_revocations");
  if (!hasTable) await gateMigration.up(base as unknown as Kysely<unknown>);
  db = base as unknown as GateDb;
  engine = createPolicyEngine(compilePolicies([]));
});
afterEach(async () => db.destroy());

const denial = async (p: Promise<unknown>): Promise<AirlockError> => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AirlockError);
  return err as AirlockError;
};

describe("revocations", () => {
  it("revokes artifacts, keys and runners, audits each once, and lists them as sets", async () => {
    const first = await revoke(
      db,
      { kind: "artifact", subject: DIGEST, reason: "built from a leaked token" },
      "sec",
      clock,
    );
    expect(first).toMatchObject({
      created: true,
      revocation: { kind: "artifact", subject: DIGEST, revokedBy: "sec" },
    });
    await revoke(db, { kind: "key", subject: "key-2024-12", reason: "rotated after incident" }, "sec", clock);
    await revoke(db, { kind: "runner", subject: "rnr_bad777", reason: "host compromised" }, "sec", clock);
    const again = await revoke(
      db,
      { kind: "artifact", subject: DIGEST, reason: "second time" },
      "bob",
      clock,
    );
    expect(again).toMatchObject({ created: false, revocation: { reason: "built from a leaked token" } });

    const list = await revocationList(db);
    expect([...list.artifacts]).toEqual([DIGEST]);
    expect([...list.keys]).toEqual(["key-2024-12"]);
    expect([...list.runners]).toEqual(["rnr_bad777"]);
    expect(list.has("artifact", DIGEST)).toBe(true);
    expect(list.has("artifact", OTHER)).toBe(false);
    expect((await listRevocations(db)).length).toBe(3);

    const events = await listAudit(db as never, { type: "revocation.added" });
    expect(events.map((e) => e.data)).toEqual([
      { kind: "artifact", subject: DIGEST, reason: "built from a leaked token" },
      { kind: "key", subject: "key-2024-12", reason: "rotated after incident" },
      { kind: "runner", subject: "rnr_bad777", reason: "host compromised" },
    ]);
  });

  it("refuses malformed subjects and empty reasons", async () => {
    await expect(revoke(db, { kind: "artifact", subject: "sha256:xyz", reason: "r" }, "sec")).rejects.toThrow(
      /not a sha256 digest/,
    );
    await expect(revoke(db, { kind: "runner", subject: "job_1", reason: "r" }, "sec")).rejects.toThrow(
      /not a runner id/,
    );
    await expect(revoke(db, { kind: "bogus" as never, subject: "x", reason: "r" }, "sec")).rejects.toThrow(
      /unknown revocation kind/,
    );
    await expect(revoke(db, { kind: "key", subject: "k", reason: "  " }, "sec")).rejects.toThrow(/reason/);
  });
});

describe("promotion", () => {
  it("promotes a protected-ref build, records it and audits artifact.promoted", async () => {
    const p = await promote(
      { db, engine, clock },
      { artifactDigest: DIGEST, channel: "production", verified: facts() },
      alice,
    );
    expect(p).toMatchObject({
      artifactDigest: DIGEST,
      channel: "production",
      allowed: true,
      policies: ["promote-protected-ref"],
      promotedBy: "alice",
      promotedAt: "2025-03-04T05:06:07.000Z",
    });
    expect(await currentPromotion(db, "production")).toEqual(p);
    const [event] = await listAudit(db as never, { type: "artifact.promoted" });
    expect(event).toMatchObject({
      actor: "alice",
      runnerId: "rnr_abc234",
      data: { artifact: DIGEST, channel: "production", policies: ["promote-protected-ref"], promotion: p.id },
    });
    expect((await verifyAudit(db as never)).ok).toBe(true);
  });

  it.each([
    ["a pull-request build", { event: "pull_request" }, "staging", ["promote-pull-request-never"]],
    [
      "an unprotected branch, to production",
      { ref: "refs/heads/feature", refProtected: false },
      "production",
      ["promote-production-requires-protected-ref"],
    ],
  ] as const)(
    "denies %s with the deciding policy, recorded and audited",
    async (_n, over, channel, reasons) => {
      const err = await denial(
        promote({ db, engine, clock }, { artifactDigest: DIGEST, channel, verified: facts(over) }, alice),
      );
      expect(err.code).toBe("POLICY_DENIED");
      for (const r of reasons) expect(err.message).toContain(r);
      expect(err.details).toMatchObject({ reasons });
      const [row] = await listPromotions(db, { channel });
      expect(row).toMatchObject({ allowed: false, policies: reasons });
      const [event] = await listAudit(db as never, { type: "artifact.promotion_denied" });
      expect(event?.data).toMatchObject({ artifact: DIGEST, channel, policies: reasons });
      expect(await currentPromotion(db, channel)).toBeUndefined();
    },
  );

  it("denies an unprotected branch on an ordinary channel because nothing permits it", async () => {
    const err = await denial(
      promote(
        { db, engine },
        {
          artifactDigest: DIGEST,
          channel: "qa",
          verified: facts({ ref: "refs/heads/x", refProtected: false }),
        },
        alice,
      ),
    );
    expect(err.message).toMatch(/to qa denied: no policy permits it$/);
    expect(err.hint).toContain("promote-protected-ref");
  });

  it("a user policy lets staging take any branch", async () => {
    const withStaging = createPolicyEngine(
      compilePolicies([
        {
          file: "channels.cedar",
          text: '@id("staging-any-branch") permit (principal, action == Airlock::Action::"Promote", resource == Airlock::Channel::"staging");',
        },
      ]),
    );
    const feature = facts({ ref: "refs/heads/feature", refProtected: false });
    const p = await promote(
      { db, engine: withStaging },
      { artifactDigest: DIGEST, channel: "staging", verified: feature },
      alice,
    );
    expect(p).toMatchObject({ allowed: true, policies: ["staging-any-branch"] });
    await denial(
      promote(
        { db, engine: withStaging },
        { artifactDigest: DIGEST, channel: "production", verified: feature },
        alice,
      ),
    );
  });

  it.each([
    ["artifact", DIGEST, "revoked:artifact", /the artifact is revoked/],
    ["runner", "rnr_abc234", "revoked:runner", /the runner is revoked/],
    ["key", "key-2025-01", "revoked:key", /the key is revoked/],
  ] as const)("refuses a revoked %s before asking policy", async (kind, subject, reason, message) => {
    await revoke(db, { kind, subject, reason: "incident 42" }, "sec");
    const err = await denial(
      promote({ db, engine }, { artifactDigest: DIGEST, channel: "production", verified: facts() }, alice),
    );
    expect(err.message).toMatch(message);
    expect(err.details).toMatchObject({ reasons: [reason] });
    const [event] = await listAudit(db as never, { type: "artifact.promotion_denied" });
    expect(event?.data).toMatchObject({ policies: [reason] });
    // Another artifact from a clean runner and key is unaffected by an artifact revocation.
    if (kind === "artifact") {
      await expect(
        promote({ db, engine }, { artifactDigest: OTHER, channel: "production", verified: facts() }, alice),
      ).resolves.toMatchObject({ allowed: true });
    }
  });

  it("checks its inputs", async () => {
    await expect(
      promote(
        { db, engine },
        { artifactDigest: "sha256:nope", channel: "production", verified: facts() },
        alice,
      ),
    ).rejects.toThrow(/not a sha256 digest/);
    await expect(
      promote({ db, engine }, { artifactDigest: DIGEST, channel: "Prod Uction", verified: facts() }, alice),
    ).rejects.toThrow(/not a channel name/);
    await expect(
      promote(
        { db, engine },
        {
          artifactDigest: DIGEST,
          channel: "production",
          verified: { ...facts(), refProtected: "yes" as never },
        },
        alice,
      ),
    ).rejects.toThrow(/lacks the facts/);
    expect(await listPromotions(db)).toEqual([]);
  });

  it("lists decisions newest first and knows what each channel holds", async () => {
    const t = (iso: string) => ({ now: () => new Date(iso) });
    await promote(
      { db, engine, clock: t("2025-01-01T00:00:00Z") },
      { artifactDigest: DIGEST, channel: "production", verified: facts() },
      alice,
    );
    await promote(
      { db, engine, clock: t("2025-01-02T00:00:00Z") },
      { artifactDigest: OTHER, channel: "production", verified: facts() },
      alice,
    );
    await denial(
      promote(
        { db, engine, clock: t("2025-01-03T00:00:00Z") },
        { artifactDigest: DIGEST, channel: "production", verified: facts({ event: "pull_request" }) },
        alice,
      ),
    );
    expect(
      (await listPromotions(db, { channel: "production" })).map((p) => [p.artifactDigest, p.allowed]),
    ).toEqual([
      [DIGEST, false],
      [OTHER, true],
      [DIGEST, true],
    ]);
    expect((await currentPromotion(db, "production"))?.artifactDigest).toBe(OTHER);
    expect(await listPromotions(db, { artifactDigest: OTHER })).toHaveLength(1);
  });
});
