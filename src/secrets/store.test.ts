import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { caught } from "../../test/fixtures/errors.js";
import { listAudit } from "../audit/log.js";
import { verifyAudit } from "../audit/verify.js";
import type { KeyEncryptionKey } from "../identity/master-key.js";
import type { Db } from "../store/database.js";
import { deleteSecret, listSecrets, readSecretValues, setSecret } from "./store.js";

import { dumpDatabase, FrozenClock, openSecretsDb, testKek } from "./testing.js";

const repo = { kind: "repo", repo: "acme/web" } as const;
const org = { kind: "org", org: "acme" } as const;
const prod = { kind: "environment", repo: "acme/web", environment: "production" } as const;
const VALUE = "npm_s3cr3t-value-4f9a2b";

describe("secret store", () => {
  let db: Db;
  let kek: KeyEncryptionKey;
  const clock = new FrozenClock();
  beforeEach(async () => {
    db = await openSecretsDb();
    kek = testKek();
  });
  afterEach(async () => db.destroy());

  it("encrypts values at rest: no column, in any table, holds the value", async () => {
    await setSecret(db, kek, { scope: repo, name: "NPM_TOKEN", value: VALUE }, "alice", { clock });
    const dump = await dumpDatabase(db);
    expect(dump).toContain("NPM_TOKEN");
    expect(dump).not.toContain(VALUE);
    expect(dump).not.toContain(Buffer.from(VALUE).toString("base64").slice(0, 16));
    expect(dump).not.toContain(Buffer.from(VALUE).toString("base64url").slice(0, 16));
    expect(dump).not.toContain(Buffer.from(VALUE).toString("hex").slice(0, 16));
    const row = await db.selectFrom("secrets").selectAll().executeTakeFirstOrThrow();
    expect(JSON.parse(row.value)).toMatchObject({ v: 1, kek: kek.id });
    expect(await readSecretValues(db, kek, repo, ["NPM_TOKEN"])).toEqual(new Map([["NPM_TOKEN", VALUE]]));
  });

  it("seals each value under its own data key (same value, different ciphertext)", async () => {
    await setSecret(db, kek, { scope: repo, name: "A_TOKEN", value: VALUE }, "alice");
    await setSecret(db, kek, { scope: repo, name: "B_TOKEN", value: VALUE }, "alice");
    const rows = await db.selectFrom("secrets").select("value").execute();
    const [a, b] = rows.map((r) => JSON.parse(r.value) as { dek: string; ct: string });
    expect(a?.dek).not.toBe(b?.dek);
    expect(a?.ct).not.toBe(b?.ct);
  });

  it("refuses to open a tampered ciphertext", async () => {
    await setSecret(db, kek, { scope: repo, name: "NPM_TOKEN", value: VALUE }, "alice");
    const t = db;
    const row = await t.selectFrom("secrets").select("value").executeTakeFirstOrThrow();
    const env = JSON.parse(row.value) as { ct: string };
    const ct = Buffer.from(env.ct, "base64url");
    ct[0] = (ct[0] as number) ^ 1;
    await t
      .updateTable("secrets")
      .set({ value: JSON.stringify({ ...env, ct: ct.toString("base64url") }) })
      .execute();
    const e = await caught(readSecretValues(db, kek, repo, ["NPM_TOKEN"]));
    expect(e.code).toBe("STORE_FAILED");
    expect(e.message).not.toContain(VALUE);
  });

  it("refuses to open a value moved to another secret's row (name or scope)", async () => {
    await setSecret(db, kek, { scope: prod, name: "DEPLOY_KEY", value: VALUE }, "alice");
    await setSecret(db, kek, { scope: repo, name: "DEPLOY_KEY", value: "repo-level-value" }, "alice");
    await setSecret(db, kek, { scope: prod, name: "OTHER_KEY", value: "other-value-123" }, "alice");
    const t = db;
    const sealed = (
      await t
        .selectFrom("secrets")
        .select("value")
        .where("scope", "=", "environment:acme/web:production")
        .where("name", "=", "DEPLOY_KEY")
        .executeTakeFirstOrThrow()
    ).value;
    // Into the same name in a less protected scope…
    await t.updateTable("secrets").set({ value: sealed }).where("scope", "=", "repo:acme/web").execute();
    expect((await caught(readSecretValues(db, kek, repo, ["DEPLOY_KEY"]))).code).toBe("STORE_FAILED");
    // …and into another name in the same scope.
    await t.updateTable("secrets").set({ value: sealed }).where("name", "=", "OTHER_KEY").execute();
    expect((await caught(readSecretValues(db, kek, prod, ["OTHER_KEY"]))).code).toBe("STORE_FAILED");
    // The original still opens.
    expect((await readSecretValues(db, kek, prod, ["DEPLOY_KEY"])).get("DEPLOY_KEY")).toBe(VALUE);
  });

  it("does not open under another master key", async () => {
    await setSecret(db, kek, { scope: repo, name: "NPM_TOKEN", value: VALUE }, "alice");
    const e = await caught(readSecretValues(db, testKek(), repo, ["NPM_TOKEN"]));
    expect(e.code).toBe("STORE_FAILED");
    expect(e.message).toContain("master key");
  });

  it("lists metadata only, never values, by scope or all", async () => {
    await setSecret(db, kek, { scope: org, name: "SHARED", value: "org-value-123" }, "alice", { clock });
    await setSecret(db, kek, { scope: repo, name: "npm_token", value: VALUE }, "bob", { clock });
    await setSecret(db, kek, { scope: prod, name: "DEPLOY_KEY", value: "deploy-value-789" }, "carol", {
      clock,
    });
    const all = await listSecrets(db);
    expect(JSON.stringify(all)).not.toMatch(/org-value|npm_s3cr3t|deploy-value|"kek"|"ct"/);
    expect(all.map((s) => [s.scope.kind, s.name])).toEqual([
      ["environment", "DEPLOY_KEY"],
      ["org", "SHARED"],
      ["repo", "NPM_TOKEN"],
    ]);
    expect(Object.keys(all[0] ?? {}).sort()).toEqual([
      "createdAt",
      "createdBy",
      "name",
      "scope",
      "updatedAt",
      "updatedBy",
      "version",
    ]);
    expect(await listSecrets(db, repo)).toEqual([
      {
        name: "NPM_TOKEN",
        scope: repo,
        version: 1,
        createdAt: clock.now().toISOString(),
        createdBy: "bob",
        updatedAt: clock.now().toISOString(),
        updatedBy: "bob",
      },
    ]);
    expect(await listSecrets(db, prod)).toHaveLength(1);
  });

  it("refuses a value shorter than 6 characters, naming the secret but not echoing the value", async () => {
    for (const value of ["abc12", "  abc12  ", "\n\tq1w2e\n", ""]) {
      const e = await caught(setSecret(db, kek, { scope: repo, name: "PIN", value }, "alice"));
      expect(e.code).toBe("REQUEST_INVALID");
      expect(e.message).toContain("PIN");
      expect(e.message).toMatch(/minimum is 6/);
      if (value.trim()) {
        expect(e.message).not.toContain(value.trim());
        expect(e.hint ?? "").not.toContain(value.trim());
        expect(JSON.stringify(e.details)).not.toContain(value.trim());
      }
    }
    expect(await listSecrets(db)).toEqual([]);
    expect(await listAudit(db)).toEqual([]);
  });

  it("counts versions, keeps the creator, and audits changes without values", async () => {
    const first = await setSecret(db, kek, { scope: repo, name: "NPM_TOKEN", value: VALUE }, "alice", {
      clock,
    });
    clock.advance(60);
    const second = await setSecret(
      db,
      kek,
      { scope: repo, name: "NPM_TOKEN", value: "rotated-value-xyz" },
      "bob",
      {
        clock,
      },
    );
    expect(first.version).toBe(1);
    expect(second).toMatchObject({ version: 2, createdBy: "alice", updatedBy: "bob" });
    expect(second.updatedAt > second.createdAt).toBe(true);
    expect((await readSecretValues(db, kek, repo, ["NPM_TOKEN"])).get("NPM_TOKEN")).toBe("rotated-value-xyz");
    await deleteSecret(db, { scope: repo, name: "npm_token" }, "carol");
    expect(await listSecrets(db)).toEqual([]);
    const audit = await listAudit(db);
    expect(audit.map((a) => [a.type, a.actor, a.data])).toEqual([
      ["secret.created", "alice", { scope: "repo:acme/web", name: "NPM_TOKEN", version: 1 }],
      ["secret.updated", "bob", { scope: "repo:acme/web", name: "NPM_TOKEN", version: 2 }],
      ["secret.deleted", "carol", { scope: "repo:acme/web", name: "NPM_TOKEN", version: 2 }],
    ]);
    expect(JSON.stringify(audit)).not.toMatch(/npm_s3cr3t|rotated-value/);
    expect((await verifyAudit(db)).ok).toBe(true);
  });

  it("reports NOT_FOUND when deleting a missing secret, and audits nothing", async () => {
    const e = await caught(deleteSecret(db, { scope: org, name: "NOPE" }, "alice"));
    expect(e.code).toBe("NOT_FOUND");
    expect(e.message).toContain("organisation acme");
    expect(await listAudit(db)).toEqual([]);
  });

  it("validates names and scopes", async () => {
    const set = (scope: unknown, name: string) =>
      caught(setSecret(db, kek, { scope: scope as typeof repo, name, value: VALUE }, "alice"));
    expect((await set(repo, "1ABC")).code).toBe("REQUEST_INVALID");
    expect((await set(repo, "HAS-DASH")).code).toBe("REQUEST_INVALID");
    expect((await set(repo, "A".repeat(129))).code).toBe("REQUEST_INVALID");
    expect((await set(repo, "GITHUB_TOKEN")).message).toContain("reserved");
    expect((await set(repo, "airlock_x")).message).toContain("reserved");
    // A value pasted where the name belongs is not echoed back.
    expect((await set(repo, "sk-live abc/123+")).message).not.toContain("sk-live");
    expect((await set({ kind: "repo", repo: "no-slash" }, "X_TOKEN")).code).toBe("REQUEST_INVALID");
    expect((await set({ kind: "org", org: "a:b" }, "X_TOKEN")).code).toBe("REQUEST_INVALID");
    expect((await set({ kind: "environment", repo: "acme/web", environment: "" }, "X_TOKEN")).code).toBe(
      "REQUEST_INVALID",
    );
    expect((await set({ kind: "team", org: "acme" }, "X_TOKEN")).code).toBe("REQUEST_INVALID");
    expect(await listSecrets(db)).toEqual([]);
  });

  it("keeps scopes apart: the same name in org, repo and environment are three secrets", async () => {
    await setSecret(db, kek, { scope: org, name: "SHARED", value: "org-value-123" }, "alice");
    await setSecret(db, kek, { scope: repo, name: "SHARED", value: "repo-value-456" }, "alice");
    await setSecret(db, kek, { scope: prod, name: "SHARED", value: "env-value-789" }, "alice");
    expect((await readSecretValues(db, kek, org, ["SHARED"])).get("SHARED")).toBe("org-value-123");
    expect((await readSecretValues(db, kek, repo, ["shared"])).get("SHARED")).toBe("repo-value-456");
    expect((await readSecretValues(db, kek, prod, ["SHARED"])).get("SHARED")).toBe("env-value-789");
    expect(await readSecretValues(db, kek, { kind: "org", org: "other" }, ["SHARED"])).toEqual(new Map());
  });
});
