import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { caught } from "../../test/fixtures/errors.js";
import { type Db, openSqlite } from "../store/database.js";
import { listEnvironments, putEnvironment } from "./environments.js";
import { registerRepo } from "./registry.js";

let db: Db;
let dir: string;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), "airlock-envs-"));
  execFileSync("git", ["init", "-q", dir]);
  db = await openSqlite(":memory:");
  await registerRepo(db, { name: "acme/web", source: dir }, "admin");
});

afterEach(async () => {
  await db.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe("environments", () => {
  it("refuses a name that differs from an existing one only in letter case", async () => {
    await putEnvironment(
      db,
      { repo: "acme/web", name: "prod", branches: ["main"], requiredApprovals: 1 },
      "admin",
    );
    const err = await caught(
      putEnvironment(db, { repo: "acme/web", name: "Prod", branches: ["*"] }, "admin"),
    );
    expect(err).toMatchObject({ code: "REQUEST_INVALID" });
    expect((err as Error).message).toContain('"Prod" differs only in letter case from the existing "prod"');
    // Nothing changed: prod keeps its rules, and no second spelling exists.
    expect((await listEnvironments(db, "acme/web")).map((e) => [e.name, e.requiredApprovals])).toEqual([
      ["prod", 1],
    ]);
  });

  it("still updates an environment under its own name", async () => {
    await putEnvironment(db, { repo: "acme/web", name: "prod", requiredApprovals: 1 }, "admin");
    await putEnvironment(db, { repo: "acme/web", name: "prod", requiredApprovals: 2 }, "admin");
    expect((await listEnvironments(db, "acme/web")).map((e) => e.requiredApprovals)).toEqual([2]);
  });
});
