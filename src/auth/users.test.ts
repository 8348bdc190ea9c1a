import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { listAudit } from "../audit/log.js";
import { verifyAudit } from "../audit/verify.js";
import { type Db, openSqlite } from "../store/database.js";
import type { Principal } from "./principal.js";
import { createUser, disableUser, ensureLocalAdmin, listUsers, localAdminName } from "./users.js";

let db: Db;
let admin: Principal;

beforeEach(async () => {
  db = await openSqlite(":memory:");
  admin = await ensureLocalAdmin(db);
});
afterEach(async () => db.destroy());

describe("users", () => {
  it("ensures the local admin once, however often it is called", async () => {
    const again = await ensureLocalAdmin(db);
    expect(again).toEqual(admin);
    expect(admin).toMatchObject({ userName: localAdminName, role: "admin", tokenId: null });
    expect((await listAudit(db, { type: "user.created" })).length).toBe(1);
  });

  it("creates a user and audits it in the same chain", async () => {
    const u = await createUser(db, { name: "ada.l", role: "submitter" }, admin);
    expect(u).toMatchObject({ name: "ada.l", role: "submitter", disabledAt: null });
    expect(u.id).toMatch(/^usr_/);
    const [event] = await listAudit(db, { type: "user.created", afterSeq: 1 });
    expect(event).toMatchObject({
      actor: admin.userId,
      data: { userId: u.id, name: "ada.l", role: "submitter" },
    });
    expect((await verifyAudit(db)).ok).toBe(true);
  });

  it.each(["", "Ada", "-ada", "a b", "a".repeat(65), "ada/x"])("rejects the name %j", async (name) => {
    await expect(createUser(db, { name, role: "viewer" }, admin)).rejects.toMatchObject({
      code: "REQUEST_INVALID",
    });
  });

  it("rejects an unknown role", async () => {
    const input = { name: "bob", role: "root" } as unknown as Parameters<typeof createUser>[1];
    await expect(createUser(db, input, admin)).rejects.toMatchObject({ code: "REQUEST_INVALID" });
  });

  it("refuses duplicates and the reserved local admin name", async () => {
    await createUser(db, { name: "bob", role: "viewer" }, admin);
    await expect(createUser(db, { name: "bob", role: "admin" }, admin)).rejects.toMatchObject({
      code: "CONFLICT",
    });
    await expect(createUser(db, { name: localAdminName, role: "viewer" }, admin)).rejects.toMatchObject({
      code: "CONFLICT",
    });
    expect((await listUsers(db, admin)).map((u) => u.name)).toEqual(["bob", localAdminName]);
    expect((await listAudit(db, { type: "user.created" })).length).toBe(2);
  });

  it("disables a user once, audited, and never the local admin", async () => {
    const u = await createUser(db, { name: "carol", role: "approver" }, admin);
    const disabled = await disableUser(db, u.id, admin);
    expect(disabled.disabledAt).not.toBeNull();
    await disableUser(db, u.id, admin);
    expect((await listAudit(db, { type: "user.disabled" })).length).toBe(1);
    await expect(disableUser(db, admin.userId, admin)).rejects.toMatchObject({ code: "CONFLICT" });
    await expect(disableUser(db, "usr_nobody", admin)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("lets only admins manage users, and audits the refusal", async () => {
    const u = await createUser(db, { name: "dave", role: "approver" }, admin);
    const dave: Principal = { userId: u.id, userName: u.name, role: u.role, tokenId: null };
    await expect(createUser(db, { name: "eve", role: "admin" }, dave)).rejects.toMatchObject({
      code: "FORBIDDEN",
      message: "role approver may not users:write",
    });
    await expect(listUsers(db, dave)).rejects.toMatchObject({ code: "FORBIDDEN" });
    const refusals = await listAudit(db, { type: "auth.forbidden" });
    expect(refusals.map((r) => r.data.action)).toEqual(["user.create", "user.list"]);
    expect(refusals[0]).toMatchObject({ actor: u.id, data: { permission: "users:write", role: "approver" } });
  });
});
