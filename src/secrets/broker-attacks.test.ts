import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { caught } from "../../test/fixtures/errors.js";
import { listAudit } from "../audit/log.js";
import type { KeyEncryptionKey } from "../identity/master-key.js";
import type { Db } from "../store/database.js";
import { type BrokerDeps, exchange } from "./broker.js";
import { listJobLeases } from "./leases.js";
import { setSecret } from "./store.js";
import { dumpDatabase, openSecretsDb, TestIssuer, testKek } from "./testing.js";

/**
 * A job's code holding its own broker token tries to reach past what its workflow declared. The
 * controller tells the broker the job's declared names (JobLiveness.declared); anything else is
 * refused before a lookup, nothing is leased, and neither the error nor the audit record carries
 * a value or the token.
 */
const VALUES = {
  declared: "declared-value-1f2e3d",
  undeclared: "undeclared-value-9a8b7c",
  org: "org-wide-value-55aa66",
};

describe("the broker holds a job to its declared secrets", () => {
  let db: Db;
  let kek: KeyEncryptionKey;
  let issuer: TestIssuer;
  let deps: BrokerDeps;
  const tokens: string[] = [];

  beforeEach(async () => {
    db = await openSecretsDb();
    kek = testKek();
    issuer = await TestIssuer.create();
    deps = issuer.deps(db, kek);
    const set = (scope: Parameters<typeof setSecret>[2]["scope"], name: string, value: string) =>
      setSecret(db, kek, { scope, name, value }, "admin", { clock: issuer.clock });
    await set({ kind: "repo", repo: "acme/web" }, "DECLARED", VALUES.declared);
    await set({ kind: "repo", repo: "acme/web" }, "UNDECLARED", VALUES.undeclared);
    await set({ kind: "org", org: "acme" }, "ORG_WIDE", VALUES.org);
  });

  afterEach(async () => {
    const everything = `${JSON.stringify(await listAudit(db))}\n${await dumpDatabase(db)}`;
    for (const v of Object.values(VALUES)) expect(everything).not.toContain(v);
    for (const t of tokens) expect(everything).not.toContain(t);
    tokens.length = 0;
    await db.destroy();
  });

  const mintFor = async (jobId: string, declared: string[]) => {
    const m = await issuer.mint(jobId);
    issuer.jobs.set(jobId, { live: true, endsAt: null, declared });
    tokens.push(m.token);
    return m.token;
  };

  it("grants a declared secret, whatever case the request or the declaration uses", async () => {
    const token = await mintFor("job_ok", ["declared"]);
    const grant = await exchange(deps, { token, secrets: ["Declared"] });
    expect(grant.secrets).toEqual({ DECLARED: VALUES.declared });
  });

  it("refuses an undeclared secret of the job's own repository, and an org secret", async () => {
    const token = await mintFor("job_a", ["DECLARED"]);
    for (const name of ["UNDECLARED", "ORG_WIDE"]) {
      const e = await caught(exchange(deps, { token, secrets: [name] }));
      expect(e.code).toBe("POLICY_DENIED");
      expect(e.message).toContain(`${name} is not declared by the job`);
    }
    expect(await listJobLeases(db, "job_a")).toEqual([]);
    const denied = (await listAudit(db, { type: "secret.denied" })).map((r) => r.data);
    expect(denied).toEqual([
      expect.objectContaining({ reason: "not_declared", undeclared: ["UNDECLARED"] }),
      expect.objectContaining({ reason: "not_declared", undeclared: ["ORG_WIDE"] }),
    ]);
    // Refused before any lookup: no decision, no scope, no version of the undeclared secret.
    for (const d of denied) expect(d.decisions).toBeUndefined();
  });

  it("is all or nothing: a declared name does not carry an undeclared one through", async () => {
    const token = await mintFor("job_b", ["DECLARED"]);
    const e = await caught(exchange(deps, { token, secrets: ["DECLARED", "UNDECLARED"] }));
    expect(e.code).toBe("POLICY_DENIED");
    expect(e.message).not.toContain("DECLARED,");
    expect(await listJobLeases(db, "job_b")).toEqual([]);
    expect(await listAudit(db, { type: "secret.granted" })).toEqual([]);
  });

  it("gives a job that declares nothing nothing", async () => {
    const token = await mintFor("job_c", []);
    expect((await caught(exchange(deps, { token, secrets: ["DECLARED"] }))).code).toBe("POLICY_DENIED");
  });

  it("does not let job B use job A's token to obtain A's declared secret as B", async () => {
    const tokenA = await mintFor("job_a2", ["DECLARED"]);
    await mintFor("job_b2", []);
    const e = await caught(
      exchange(deps, { token: tokenA, secrets: ["DECLARED"] }, { expectJobId: "job_b2" }),
    );
    expect(e.code).toBe("FORBIDDEN");
    expect(await listJobLeases(db, "job_b2")).toEqual([]);
    expect(await listJobLeases(db, "job_a2")).toEqual([]);
  });

  it("never echoes the token or a value in its errors", async () => {
    const token = await mintFor("job_d", ["DECLARED"]);
    const attempts = [
      exchange(deps, { token, secrets: ["UNDECLARED"] }),
      exchange(deps, { token: `${token}x`, secrets: ["DECLARED"] }),
      exchange(deps, { token, secrets: [VALUES.undeclared] }),
      exchange(deps, { token, secrets: ["DECLARED"], audience: token }),
    ];
    for (const p of attempts) {
      const e = await caught(p);
      const text = JSON.stringify({ m: e.message, h: e.hint, d: e.details });
      expect(text).not.toContain(token);
      for (const part of token.split(".")) expect(text).not.toContain(part);
      for (const v of Object.values(VALUES)) expect(text).not.toContain(v);
    }
  });
});
