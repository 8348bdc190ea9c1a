import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Airlock, GitRepo } from "./cli-harness.js";

/** Someone with write access to the database edits or deletes audit rows; `audit verify` names them. */
let airlock: Airlock;
let repo: GitRepo;

beforeAll(async () => {
  airlock = Airlock.create("tamper");
  repo = GitRepo.create("tamper", {
    ".airlock/workflows/ci.yml":
      "on: push\njobs:\n  a:\n    runs-on: airlock\n    steps:\n      - run: echo hi\n",
  });
  expect((await airlock.cli("repo", "add", "e2e/tamper", "--source", repo.dir)).status).toBe(0);
  expect((await airlock.cli("run", "e2e/tamper")).status).toBe(0);
  expect((await airlock.cli("run", "e2e/tamper", "--ref", "nope")).status).not.toBe(0);
}, 20 * 60_000);

afterAll(() => {
  airlock?.cleanup();
  repo?.cleanup();
});

function withDb<T>(body: (db: Database.Database) => T): T {
  const db = new Database(airlock.database);
  try {
    return body(db);
  } finally {
    db.close();
  }
}

describe("audit verify", () => {
  it("is intact after ordinary runs", async () => {
    const r = await airlock.cli("audit", "verify");
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^audit log intact: \d+ records/);
    expect((await airlock.audit()).length).toBeGreaterThan(8);
  });

  it("names an edited record, and is intact again once it is put back", async () => {
    const original = withDb(
      (db) => db.prepare("select data from audit_events where seq = 3").get() as { data: string },
    );
    withDb((db) =>
      db.prepare("update audit_events set data = ? where seq = 3").run(JSON.stringify({ forged: true })),
    );
    const r = await airlock.cli("audit", "verify");
    expect(r.status).toBe(6);
    expect(r.stdout).toMatch(/audit log TAMPERED: 1 problem\(s\)/);
    expect(r.stdout).toMatch(/edited: record 3 \(evt_[a-z0-9]+, [\w.]+\) was edited/);

    withDb((db) => db.prepare("update audit_events set data = ? where seq = 3").run(original.data));
    expect((await airlock.cli("audit", "verify")).status).toBe(0);
  });

  it("names the gap a deleted record leaves", async () => {
    withDb((db) => db.prepare("delete from audit_events where seq = 5").run());
    const r = await airlock.cli("audit", "verify");
    expect(r.status).toBe(6);
    expect(r.stdout).toMatch(/missing: record 5 missing before evt_[a-z0-9]+ \(seq 6\)/);
  });
});
