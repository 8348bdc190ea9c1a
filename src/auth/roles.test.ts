import { describe, expect, it } from "vitest";
import { can, type Permission, permissions, permissionTable, type roles } from "./roles.js";

describe("permission table", () => {
  it("gives admin every permission", () => {
    for (const p of permissions) expect(can("admin", p)).toBe(true);
  });

  it("nests viewer ⊂ submitter ⊂ approver ⊂ admin", () => {
    const chain = ["viewer", "submitter", "approver", "admin"] as const;
    for (let i = 1; i < chain.length; i++) {
      const lower = chain[i - 1] as (typeof chain)[number];
      const upper = chain[i] as (typeof chain)[number];
      for (const p of permissionTable[lower]) expect(can(upper, p), `${upper} ${p}`).toBe(true);
    }
  });

  it.each<[string, Permission, boolean]>([
    ["viewer", "runs:read", true],
    ["viewer", "runs:create", false],
    ["viewer", "runs:cancel", false],
    ["viewer", "tokens:write-own", true],
    ["submitter", "runs:create", true],
    ["submitter", "runs:cancel", true],
    ["submitter", "jobs:approve", false],
    ["approver", "jobs:approve", true],
    ["approver", "users:write", false],
    ["approver", "repos:write", false],
    ["approver", "secrets:write", false],
    ["admin", "secrets:write", true],
  ])("%s %s -> %s", (role, permission, allowed) => {
    expect(can(role as (typeof roles)[number], permission)).toBe(allowed);
  });

  it("keeps viewers read-only apart from their own tokens", () => {
    const writes = [...permissionTable.viewer].filter((p) => !/:(read|verify)$/.test(p));
    expect(writes).toEqual(["tokens:write-own"]);
  });
});
