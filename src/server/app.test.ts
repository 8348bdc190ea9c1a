import { Writable } from "node:stream";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  makeGitRepo,
  openTestController,
  seedUsers,
  type TestUsers,
  tempDir,
} from "../../test/fixtures/server.js";
import { issueToken } from "../auth/index.js";
import type { Controller } from "../controller/controller.js";
import { buildApp } from "./app.js";

const badWorkflow = `name: ci
on: push
jobs:
  build:
    runs-on: airlock
    stepz:
      - run: echo hello
`;
const goodWorkflow = `name: ci
on: push
jobs:
  build:
    runs-on: airlock
    steps:
      - run: echo hello
`;

let tmp: ReturnType<typeof tempDir>;
let controller: Controller;
let app: FastifyInstance;
let users: TestUsers;
let badRepo: string;
let goodRepo: string;

beforeAll(async () => {
  tmp = tempDir("airlock-server-");
  controller = await openTestController(tmp.dataDir);
  users = await seedUsers(controller);
  badRepo = makeGitRepo(tmp.dir, "bad", { ".airlock/workflows/ci.yml": badWorkflow });
  goodRepo = makeGitRepo(tmp.dir, "good", { ".airlock/workflows/ci.yml": goodWorkflow });
  app = buildApp({ controller });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await controller?.close();
  tmp?.cleanup();
});

function expectProblem(
  res: { headers: Record<string, unknown>; json: () => unknown },
  status: number,
  code: string,
) {
  expect(res.headers["content-type"]).toMatch(/^application\/problem\+json/);
  const body = res.json() as Record<string, unknown>;
  expect(body).toMatchObject({
    type: `https://airlock.dev/problems/${code.toLowerCase()}`,
    status,
    code,
  });
  expect(typeof body.title).toBe("string");
  expect(typeof body.detail).toBe("string");
  expect(typeof body.instance).toBe("string");
  return body;
}

async function auditTypes(type: string) {
  const res = await app.inject({
    method: "GET",
    url: `/api/v1/audit?type=${type}`,
    headers: bearer(users.adminToken),
  });
  expect(res.statusCode).toBe(200);
  return res.json() as { type: string; data: Record<string, unknown> }[];
}

describe("server: health and routing", () => {
  it("GET /healthz needs no token and says nothing but ok", async () => {
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ ok: true });
  });

  it("an unknown route is a problem+json 404 (after no auth, since no route matched)", async () => {
    const res = await app.inject({ method: "GET", url: "/api/v1/nope?x=1" });
    const body = expectProblem(res, 404, "NOT_FOUND");
    expect(body.instance).toBe("/api/v1/nope");
  });

  it("every response carries a request id", async () => {
    const res = await app.inject({ method: "GET", url: "/healthz" });
    expect(res.headers["x-request-id"]).toMatch(/^[0-9a-f-]{36}$/);
  });

  it("refuses to register a route that declares no access", async () => {
    const bare = buildApp({ controller });
    expect(() => bare.get("/open", async () => "x")).toThrow(/declares no access/);
    await bare.close();
  });
});

describe("server: authentication and authorization", () => {
  it("401 without a token, audited", async () => {
    const before = (await auditTypes("auth.unauthenticated")).length;
    const res = await app.inject({ method: "GET", url: "/api/v1/runs" });
    const body = expectProblem(res, 401, "UNAUTHENTICATED");
    expect(body.hint).toMatch(/Bearer/);
    const after = await auditTypes("auth.unauthenticated");
    expect(after.length).toBe(before + 1);
    expect(after.at(-1)?.data).toMatchObject({ reason: "missing", route: "/api/v1/runs", method: "GET" });
  });

  it("401 with a malformed, an unknown and an expired token, never echoing the token", async () => {
    const unknown = `alk_${"A".repeat(43)}`;
    for (const header of ["Bearer nope", `Bearer ${unknown}`, `Token ${unknown}`]) {
      const res = await app.inject({
        method: "GET",
        url: "/api/v1/runs",
        headers: { authorization: header },
      });
      expectProblem(res, 401, "UNAUTHENTICATED");
      expect(res.body).not.toContain("nope");
      expect(res.body).not.toContain(unknown);
    }
    // A token that expires in a minute, presented to an app whose clock is an hour ahead.
    const short = await issueToken(
      controller.db,
      { userId: users.admin.userId, name: "short", ttlSeconds: 60 },
      users.admin,
    );
    const later = buildApp({ controller, clock: { now: () => new Date(Date.now() + 3_600_000) } });
    const res = await later.inject({ method: "GET", url: "/api/v1/runs", headers: bearer(short.token) });
    expectProblem(res, 401, "UNAUTHENTICATED");
    expect(res.body).not.toContain(short.token);
    await later.close();
    const reasons = (await auditTypes("auth.unauthenticated")).map((e) => e.data.reason);
    expect(reasons).toEqual(expect.arrayContaining(["malformed", "unknown", "scheme", "expired"]));
  });

  it("the HEAD twins of GET routes are guarded too", async () => {
    const res = await app.inject({ method: "HEAD", url: "/api/v1/audit" });
    expect(res.statusCode).toBe(401);
  });

  it("authenticates before reading the body: no token + bad body is 401, not 400", async () => {
    const res = await app.inject({ method: "POST", url: "/api/v1/runs", payload: { nonsense: true } });
    expectProblem(res, 401, "UNAUTHENTICATED");
  });

  it("403 for a viewer submitting a run, audited as auth.forbidden", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/v1/runs",
      headers: bearer(users.viewerToken),
      payload: { repo: "acme/good", ref: "main" },
    });
    const body = expectProblem(res, 403, "FORBIDDEN");
    expect(body.detail).toBe("role viewer may not runs:create");
    const forbidden = await auditTypes("auth.forbidden");
    expect(forbidden.at(-1)?.data).toMatchObject({
      permission: "runs:create",
      role: "viewer",
      route: "/api/v1/runs",
    });
  });

  it("403 for a viewer on admin routes (users, repos)", async () => {
    for (const [method, url] of [
      ["GET", "/api/v1/users"],
      ["POST", "/api/v1/users"],
      ["POST", "/api/v1/repos"],
    ] as const) {
      const res = await app.inject({ method, url, headers: bearer(users.viewerToken), payload: {} });
      expectProblem(res, 403, "FORBIDDEN");
    }
  });
});

describe("server: requests and problems", () => {
  it("rejects a body that names the actor", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/v1/runs",
      headers: bearer(users.submitterToken),
      payload: { repo: "acme/good", ref: "main", actor: "local-admin" },
    });
    const body = expectProblem(res, 400, "REQUEST_INVALID");
    expect(body.detail).toContain("actor");
    expect(body.errors).toEqual([expect.objectContaining({ location: "body" })]);
  });

  it("rejects malformed JSON and oversized bodies as problems", async () => {
    const bad = await app.inject({
      method: "POST",
      url: "/api/v1/runs",
      headers: { ...bearer(users.submitterToken), "content-type": "application/json" },
      payload: "{not json",
    });
    const badBody = expectProblem(bad, 400, "REQUEST_INVALID");
    // The parser's message would quote the body; the problem must not.
    expect(badBody.detail).toMatch(/not valid JSON/);
    expect(bad.body).not.toContain("{not json");
    const big = await app.inject({
      method: "POST",
      url: "/api/v1/runs",
      headers: bearer(users.submitterToken),
      payload: { repo: "acme/good", ref: "main", inputs: { x: "y".repeat(300 * 1024) } },
    });
    expectProblem(big, 413, "REQUEST_INVALID");
  });

  it("checks id shapes in paths (400) and reports missing things (404)", async () => {
    const shape = await app.inject({
      method: "GET",
      url: "/api/v1/runs/nope",
      headers: bearer(users.viewerToken),
    });
    expectProblem(shape, 400, "REQUEST_INVALID");
    const missing = await app.inject({
      method: "GET",
      url: `/api/v1/runs/run_${"a".repeat(16)}`,
      headers: bearer(users.viewerToken),
    });
    const body = expectProblem(missing, 404, "NOT_FOUND");
    expect(body.hint).toBeDefined();
  });

  it("registers repos (admin) and lists them (viewer)", async () => {
    for (const [name, source] of [
      ["acme/bad", badRepo],
      ["acme/good", goodRepo],
    ]) {
      const res = await app.inject({
        method: "POST",
        url: "/api/v1/repos",
        headers: bearer(users.adminToken),
        payload: { name, source },
      });
      expect(res.statusCode).toBe(201);
      expect(res.json()).toMatchObject({ name, protection: { branches: ["main"] } });
    }
    const again = await app.inject({
      method: "POST",
      url: "/api/v1/repos",
      headers: bearer(users.adminToken),
      payload: { name: "acme/good", source: goodRepo },
    });
    expectProblem(again, 409, "CONFLICT");
    const list = await app.inject({
      method: "GET",
      url: "/api/v1/repos",
      headers: bearer(users.viewerToken),
    });
    expect((list.json() as { name: string }[]).map((r) => r.name)).toEqual(["acme/bad", "acme/good"]);
  });

  it("a workflow error is a 422 naming file:line:col", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/v1/runs",
      headers: bearer(users.submitterToken),
      payload: { repo: "acme/bad", ref: "main" },
    });
    const body = expectProblem(res, 422, "WORKFLOW_INVALID");
    expect(body.detail).toMatch(/^\.airlock\/workflows\/ci\.yml:6:5: /);
    expect(body.position).toEqual({ file: ".airlock/workflows/ci.yml", line: 6, col: 5 });
    expect(body.errors).toEqual([
      expect.objectContaining({ file: ".airlock/workflows/ci.yml", line: 6, col: 5 }),
    ]);
    expect(body.hint).toBeDefined();
    const refused = await auditTypes("run.refused");
    expect(refused.at(-1)?.data).toMatchObject({ code: "WORKFLOW_INVALID", repo: "acme/bad" });
  });

  it("submits a run as the authenticated caller, whatever else is said", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/v1/runs",
      headers: bearer(users.submitterToken),
      payload: { repo: "acme/good", ref: "main" },
    });
    expect(res.statusCode).toBe(201);
    const run = res.json() as { id: string; actor: string; jobs: { id: string; state: string }[] };
    expect(run.actor).toBe("sam");
    expect(run.jobs).toHaveLength(1);

    const list = await app.inject({
      method: "GET",
      url: "/api/v1/runs?repo=acme/good&limit=5",
      headers: bearer(users.viewerToken),
    });
    expect((list.json() as { id: string }[]).map((r) => r.id)).toEqual([run.id]);
    const job = await app.inject({
      method: "GET",
      url: `/api/v1/jobs/${run.jobs[0]?.id}`,
      headers: bearer(users.viewerToken),
    });
    expect(job.json()).toMatchObject({ id: run.jobs[0]?.id, runId: run.id, steps: expect.any(Array) });

    const viewerCancel = await app.inject({
      method: "POST",
      url: `/api/v1/runs/${run.id}/cancel`,
      headers: bearer(users.viewerToken),
    });
    expectProblem(viewerCancel, 403, "FORBIDDEN");
    const cancel = await app.inject({
      method: "POST",
      url: `/api/v1/runs/${run.id}/cancel`,
      headers: bearer(users.submitterToken),
    });
    expect(cancel.statusCode).toBe(202);
    expect(cancel.json()).toMatchObject({ id: run.id, state: "cancelled" });
    const cancelled = await app.inject({
      method: "GET",
      url: `/api/v1/audit?run=${run.id}&type=job.cancelled`,
      headers: bearer(users.viewerToken),
    });
    // The actor of the cancellation is the authenticated caller.
    expect(cancelled.json()).toEqual([expect.objectContaining({ actor: "sam", jobId: run.jobs[0]?.id })]);
  });
});

describe("server: users and tokens", () => {
  it("creates and lists users (admin only)", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/v1/users",
      headers: bearer(users.adminToken),
      payload: { name: "ada", role: "approver" },
    });
    expect(res.statusCode).toBe(201);
    expect(res.json()).toMatchObject({ name: "ada", role: "approver", id: expect.stringMatching(/^usr_/) });
    const list = await app.inject({ method: "GET", url: "/api/v1/users", headers: bearer(users.adminToken) });
    expect((list.json() as { name: string }[]).map((u) => u.name)).toContain("ada");
  });

  it("shows a token once, never stores or logs it, and revokes it", async () => {
    const res = await app.inject({
      method: "POST",
      url: "/api/v1/tokens",
      headers: bearer(users.viewerToken),
      payload: { name: "laptop", ttlSeconds: 3600 },
    });
    expect(res.statusCode).toBe(201);
    expect(res.headers["cache-control"]).toBe("no-store");
    const issued = res.json() as { id: string; token: string; userId: string };
    expect(issued.token).toMatch(/^alk_[A-Za-z0-9_-]{43}$/);
    const allAudit = await app.inject({
      method: "GET",
      url: "/api/v1/audit?limit=10000",
      headers: bearer(users.adminToken),
    });
    expect(allAudit.body).not.toContain(issued.token);
    expect(allAudit.body).toContain(issued.id);

    // The new token works; after revocation it does not.
    const ok = await app.inject({ method: "GET", url: "/api/v1/runs", headers: bearer(issued.token) });
    expect(ok.statusCode).toBe(200);
    const del = await app.inject({
      method: "DELETE",
      url: `/api/v1/tokens/${issued.id}`,
      headers: bearer(issued.token),
    });
    expect(del.statusCode).toBe(200);
    expect(del.json()).toMatchObject({ id: issued.id, revokedAt: expect.any(String) });
    expect(del.body).not.toContain(issued.token);
    const after = await app.inject({ method: "GET", url: "/api/v1/runs", headers: bearer(issued.token) });
    expectProblem(after, 401, "UNAUTHENTICATED");
  });

  it("issues for another user only with users:write", async () => {
    const viewer = await app.inject({
      method: "POST",
      url: "/api/v1/tokens",
      headers: bearer(users.viewerToken),
      payload: { user: "sam", name: "theirs" },
    });
    expectProblem(viewer, 403, "FORBIDDEN");
    const admin = await app.inject({
      method: "POST",
      url: "/api/v1/tokens",
      headers: bearer(users.adminToken),
      payload: { user: "sam", name: "for-sam" },
    });
    expect(admin.statusCode).toBe(201);
    const missing = await app.inject({
      method: "POST",
      url: "/api/v1/tokens",
      headers: bearer(users.adminToken),
      payload: { user: "nobody", name: "x" },
    });
    expectProblem(missing, 404, "NOT_FOUND");
  });
});

describe("server: audit", () => {
  it("lists refusals and verifies the chain", async () => {
    const forbidden = await auditTypes("auth.forbidden");
    expect(forbidden.length).toBeGreaterThanOrEqual(4);
    const paged = await app.inject({
      method: "GET",
      url: "/api/v1/audit?after=2&limit=3",
      headers: bearer(users.viewerToken),
    });
    const page = paged.json() as { seq: number }[];
    expect(page.map((r) => r.seq)).toEqual([3, 4, 5]);
    const verify = await app.inject({
      method: "POST",
      url: "/api/v1/audit/verify",
      headers: bearer(users.viewerToken),
    });
    expect(verify.statusCode).toBe(200);
    expect(verify.json()).toMatchObject({ ok: true, problems: [] });
  });
});

describe("server: logging", () => {
  it("logs request ids and run ids, never the token", async () => {
    const lines: Record<string, unknown>[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        for (const l of String(chunk).split("\n"))
          if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
        done();
      },
    });
    const logged = buildApp({
      controller,
      logger: pino({ level: "info" }, sink) as unknown as FastifyBaseLogger,
    });
    const submitted = await logged.inject({
      method: "POST",
      url: "/api/v1/runs",
      headers: bearer(users.submitterToken),
      payload: { repo: "acme/good", ref: "main" },
    });
    const runId = (submitted.json() as { id: string }).id;
    await logged.inject({
      method: "POST",
      url: `/api/v1/runs/${runId}/cancel`,
      headers: bearer(users.submitterToken),
    });
    await logged.inject({ method: "GET", url: "/api/v1/runs", headers: bearer(`alk_${"Q".repeat(43)}`) });
    await logged.close();

    const text = JSON.stringify(lines);
    expect(text).not.toContain(users.submitterToken);
    expect(text).not.toContain("Q".repeat(43));
    expect(text.toLowerCase()).not.toContain("authorization");
    expect(lines.every((l) => typeof l.reqId === "string")).toBe(true);
    expect(lines).toContainEqual(expect.objectContaining({ msg: "run submitted", runId, user: "sam" }));
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "run cancel requested", runId, user: "sam" }),
    );
    // Fastify's own completion line for the cancel carries the run id too.
    expect(lines).toContainEqual(
      expect.objectContaining({ msg: "request completed", runId, res: { statusCode: 202 } }),
    );
  });
});
