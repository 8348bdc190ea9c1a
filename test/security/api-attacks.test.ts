import { createHash } from "node:crypto";
import { copyFileSync, existsSync, rmSync, writeFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { Writable } from "node:stream";
import Database from "better-sqlite3";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import { sql } from "kysely";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { listAudit } from "../../src/audit/log.js";
import { disableUser } from "../../src/auth/index.js";
import type { Controller } from "../../src/controller/controller.js";
import { buildApp } from "../../src/server/app.js";
import { safeFileName } from "../../src/server/routes/artifacts.js";
import { startServer } from "../../src/server/serve.js";
import { Airlock } from "../e2e/cli-harness.js";
import {
  makeGitRepo,
  openTestController,
  seedUsers,
  type TestUsers,
  tempDir,
  testConfig,
} from "../fixtures/server.js";

/**
 * The HTTP API attacked from outside: a real loopback listener, requests written by hand where a
 * client library would tidy them up. Every attack must fail with a problem document, every refusal
 * must be audited with who asked (never their token), and nothing a refusal says or logs may carry
 * a token, a token hash, a secret, a stack trace or a host path.
 */
const workflow = `name: ci
on: push
jobs:
  build:
    runs-on: airlock
    steps:
      - run: echo hello
`;
const deployWorkflow = `name: deploy
on: push
jobs:
  deploy:
    runs-on: airlock
    environment: prod
    steps:
      - run: echo deploy
`;

let tmp: ReturnType<typeof tempDir>;
let controller: Controller;
let app: FastifyInstance;
let base: string;
let port: number;
let users: TestUsers;
let serverLog = "";
const tokens: Record<string, string> = {};
const userIds: Record<string, string> = {};
/** Every error response body seen, checked for leaks at the end. */
const errorBodies: string[] = [];
const SECRET = "s3cr3t-value-for-api-attacks-91f2";

interface Res {
  status: number;
  headers: Headers;
  body: string;
  json: () => Record<string, unknown>;
}

async function api(
  method: string,
  path: string,
  opts: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<Res> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  let body: string | undefined = opts.raw;
  if (opts.body !== undefined) {
    body = JSON.stringify(opts.body);
    headers["content-type"] ??= "application/json";
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  if (res.status >= 400) errorBodies.push(text);
  return { status: res.status, headers: res.headers, body: text, json: () => JSON.parse(text) };
}

/** One request written byte for byte; the response as text. */
function raw(request: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1", () => s.end(request));
    let out = "";
    s.setEncoding("latin1");
    s.on("data", (d: string) => {
      out += d;
    });
    s.on("close", () => {
      const i = out.indexOf("\r\n\r\n");
      if (i !== -1 && out.startsWith("HTTP/1.1 4")) errorBodies.push(out.slice(i + 4));
      resolve(out);
    });
    s.on("error", () => resolve(out));
  });
}

function expectProblem(res: Res, status: number, code?: string): Record<string, unknown> {
  expect(res.status, res.body).toBe(status);
  expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
  const body = res.json();
  expect(body).toMatchObject({ status, type: expect.stringMatching(/^https:\/\/airlock\.dev\/problems\//) });
  if (code) expect(body.code).toBe(code);
  return body;
}

async function lastAudit(type: string) {
  return (await listAudit(controller.db, { type })).at(-1);
}

async function auditCount(type: string): Promise<number> {
  return (await listAudit(controller.db, { type })).length;
}

beforeAll(async () => {
  tmp = tempDir("airlock-api-attacks-");
  controller = await openTestController(tmp.dataDir);
  users = await seedUsers(controller);
  tokens.admin = users.adminToken;
  tokens.viewer = users.viewerToken;
  tokens.submitter = users.submitterToken;
  const sink = new Writable({
    write(chunk, _enc, done) {
      serverLog += String(chunk);
      done();
    },
  });
  app = buildApp({ controller, logger: pino({ level: "trace" }, sink) as unknown as FastifyBaseLogger });
  base = await app.listen({ host: "127.0.0.1", port: 0 });
  port = Number(new URL(base).port);

  const source = makeGitRepo(tmp.dir, "web", {
    ".airlock/workflows/ci.yml": workflow,
    ".airlock/workflows/deploy.yml": deployWorkflow,
  });
  expect(
    (await api("POST", "/api/v1/repos", { token: tokens.admin, body: { name: "acme/web", source } })).status,
  ).toBe(201);
  for (const [name, role] of [
    ["alice", "approver"],
    ["bob", "approver"],
  ] as const) {
    const u = await api("POST", "/api/v1/users", { token: tokens.admin, body: { name, role } });
    userIds[name] = (u.json() as { id: string }).id;
    const t = await api("POST", "/api/v1/tokens", { token: tokens.admin, body: { user: name, name: "t" } });
    expect(t.status).toBe(201);
    tokens[name] = (t.json() as { token: string }).token;
  }
  const set = await api("PUT", "/api/v1/secrets", {
    token: tokens.admin,
    body: { scope: { kind: "repo", repo: "acme/web" }, name: "DEPLOY_KEY", value: SECRET },
  });
  expect(set.status, set.body).toBe(200);
}, 60_000);

afterAll(async () => {
  await app?.close();
  await controller?.close();
  tmp?.cleanup();
});

const ci = ".airlock/workflows/ci.yml";
const someRun = `run_${"a".repeat(16)}`;
const someJob = `job_${"a".repeat(16)}`;

describe("authentication: the Authorization header", () => {
  it.each<[string, Record<string, string>, string]>([
    ["no header", {}, "missing"],
    ["an empty header", { authorization: "" }, "missing"],
    ["Basic credentials", { authorization: "Basic YWRtaW46YWRtaW4=" }, "scheme"],
    ["a bare token", { authorization: "TOKEN" }, "scheme"],
    ["Token scheme", { authorization: "Token TOKEN" }, "scheme"],
    ["Bearer with nothing", { authorization: "Bearer" }, "malformed"],
    ["Bearer, two credentials", { authorization: "Bearer TOKEN TOKEN" }, "malformed"],
    ["Bearer, comma-joined", { authorization: "Bearer TOKEN, Bearer TOKEN" }, "malformed"],
    ["a JWT", { authorization: "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9." }, "malformed"],
  ])("401s %s, audited with its reason and no token", async (_label, headers, reason) => {
    const h = Object.fromEntries(
      Object.entries(headers).map(([k, v]) => [k, v.replaceAll("TOKEN", tokens.admin as string)]),
    );
    const before = await auditCount("auth.unauthenticated");
    const res = await api("GET", "/api/v1/runs", { headers: h });
    const body = expectProblem(res, 401, "UNAUTHENTICATED");
    expect(JSON.stringify(body)).not.toContain((tokens.admin as string).slice(4));
    expect(await auditCount("auth.unauthenticated")).toBe(before + 1);
    expect(await lastAudit("auth.unauthenticated")).toMatchObject({
      actor: "anonymous",
      data: { reason, route: "/api/v1/runs", method: "GET", ip: "127.0.0.1" },
    });
  });

  it("accepts the Bearer scheme in any case and with extra spaces: it is the same credential", async () => {
    for (const h of [`bearer ${tokens.viewer}`, `BEARER ${tokens.viewer}`, `Bearer    ${tokens.viewer}  `]) {
      expect((await api("GET", "/api/v1/runs", { headers: { authorization: h } })).status).toBe(200);
    }
  });

  it("401s two Authorization headers, whichever comes first", async () => {
    for (const [a, b] of [
      [tokens.viewer, tokens.admin],
      [tokens.admin, tokens.viewer],
      [tokens.admin, tokens.admin],
    ]) {
      const out = await raw(
        `GET /api/v1/users HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${a}\r\nAuthorization: Bearer ${b}\r\nConnection: close\r\n\r\n`,
      );
      expect(out).toMatch(/^HTTP\/1\.1 401 /);
      expect(out).toMatch(/content-type: application\/problem\+json/i);
    }
    expect((await lastAudit("auth.unauthenticated"))?.data.reason).toBe("duplicate");
  });

  it("never takes a token from the query string, and never logs one sent there", async () => {
    for (const q of ["access_token", "token", "auth", "bearer"]) {
      const res = await api("GET", `/api/v1/repos?${q}=${tokens.admin}`);
      expectProblem(res, 401, "UNAUTHENTICATED");
      expect(res.body).not.toContain(tokens.admin);
    }
    expect(serverLog).not.toContain((tokens.admin as string).slice(4));
  });

  it("401s a stored token hash, prefixes, truncations and padded tokens", async () => {
    const { rows } = await sql<{ hash: string }>`select hash from api_tokens`.execute(controller.db);
    const t = tokens.admin as string;
    for (const attempt of [
      ...rows.map((r) => r.hash),
      `alk_${rows[0]?.hash}`,
      t.slice(0, 4),
      t.slice(0, 12),
      t.slice(0, -1),
      `${t}x`,
      t.slice(4),
      t.toUpperCase(),
    ]) {
      expectProblem(await api("GET", "/api/v1/runs", { token: attempt }), 401, "UNAUTHENTICATED");
    }
  });

  it("401s a long token and answers an oversized header with a problem document, not a crash", async () => {
    const long = await api("GET", "/api/v1/runs", {
      headers: { authorization: `Bearer alk_${"a".repeat(8000)}` },
    });
    expectProblem(long, 401, "UNAUTHENTICATED");
    const huge = await raw(
      `GET /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.admin}${"a".repeat(40_000)}\r\nConnection: close\r\n\r\n`,
    );
    expect(huge).toMatch(/^HTTP\/1\.1 431 /);
    expect(huge).toMatch(/application\/problem\+json/i);
    expect(huge).not.toContain((tokens.admin as string).slice(4));
    const ctl = await raw(
      `GET /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer alk_\x01x\r\nConnection: close\r\n\r\n`,
    );
    expect(ctl).toMatch(/^HTTP\/1\.1 400 [\s\S]*application\/problem\+json/i);
    // The server is still there.
    expect((await api("GET", "/healthz")).status).toBe(200);
  });

  it("ignores X-Forwarded-For: the audited address is the socket's", async () => {
    await api("GET", "/api/v1/runs", {
      headers: { "x-forwarded-for": "203.0.113.9", forwarded: "for=203.0.113.9" },
    });
    expect((await lastAudit("auth.unauthenticated"))?.data.ip).toBe("127.0.0.1");
  });
});

describe("authentication: token lifecycle", () => {
  it("shows a token once, stores only its hash, and lists no secret anywhere", async () => {
    const res = await api("POST", "/api/v1/tokens", { token: tokens.viewer, body: { name: "once" } });
    expect(res.status).toBe(201);
    expect(res.headers.get("cache-control")).toBe("no-store");
    const issued = res.json() as { token: string; id: string };
    const stored = JSON.stringify(
      (await sql<Record<string, unknown>>`select * from api_tokens`.execute(controller.db)).rows,
    );
    expect(stored).not.toContain(issued.token.slice(4));
    expect(stored).toContain(createHash("sha256").update(issued.token).digest("hex"));
    for (const path of ["/api/v1/users", "/api/v1/audit?limit=10000"]) {
      const list = await api("GET", path, { token: tokens.admin });
      expect(list.body).not.toContain(issued.token.slice(4));
      expect(list.body).not.toContain(createHash("sha256").update(issued.token).digest("hex"));
    }
  });

  it("401s an expired token (the app's clock moved past its expiry)", async () => {
    const res = await api("POST", "/api/v1/tokens", {
      token: tokens.viewer,
      body: { name: "short", ttlSeconds: 60 },
    });
    const short = (res.json() as { token: string }).token;
    const later = buildApp({ controller, clock: { now: () => new Date(Date.now() + 120_000) } });
    const r = await later.inject({
      method: "GET",
      url: "/api/v1/runs",
      headers: { authorization: `Bearer ${short}` },
    });
    expect(r.statusCode).toBe(401);
    expect(r.body).not.toContain(short);
    await later.close();
    expect((await lastAudit("auth.unauthenticated"))?.data.reason).toBe("expired");
  });

  it("refuses tokens that never expire or outlive the maximum", async () => {
    for (const ttlSeconds of [0, -1, 1e12, 1.5, "3600"]) {
      expectProblem(
        await api("POST", "/api/v1/tokens", { token: tokens.viewer, body: { name: "x", ttlSeconds } }),
        400,
        "REQUEST_INVALID",
      );
    }
  });

  it("401s a revoked token at once, and the token of a disabled or deleted user", async () => {
    const issue = async (user: string) => {
      const r = await api("POST", "/api/v1/tokens", { token: tokens.admin, body: { user, name: "x" } });
      return r.json() as { token: string; id: string };
    };
    const t = await issue("alice");
    expect((await api("GET", "/api/v1/runs", { token: t.token })).status).toBe(200);
    expect((await api("DELETE", `/api/v1/tokens/${t.id}`, { token: t.token })).status).toBe(200);
    expectProblem(await api("GET", "/api/v1/runs", { token: t.token }), 401);
    expect((await lastAudit("auth.unauthenticated"))?.data).toMatchObject({
      reason: "revoked",
      tokenId: t.id,
    });

    const carol = await api("POST", "/api/v1/users", {
      token: tokens.admin,
      body: { name: "carol", role: "admin" },
    });
    const carolId = (carol.json() as { id: string }).id;
    const ct = await issue("carol");
    expect((await api("GET", "/api/v1/users", { token: ct.token })).status).toBe(200);
    await disableUser(controller.db, carolId, users.admin);
    expectProblem(await api("GET", "/api/v1/users", { token: ct.token }), 401);
    expect((await lastAudit("auth.unauthenticated"))?.data.reason).toBe("user_disabled");

    const dave = await api("POST", "/api/v1/users", {
      token: tokens.admin,
      body: { name: "dave", role: "admin" },
    });
    const dt = await issue("dave");
    await sql`pragma foreign_keys = off`.execute(controller.db);
    await sql`delete from users where id = ${(dave.json() as { id: string }).id}`.execute(controller.db);
    await sql`pragma foreign_keys = on`.execute(controller.db);
    expectProblem(await api("GET", "/api/v1/users", { token: dt.token }), 401);
  });
});

describe("authorization: roles", () => {
  const attempts: [string, string, string, unknown?][] = [
    ["viewer", "POST", "/api/v1/runs", { repo: "acme/web", ref: "main" }],
    ["viewer", "POST", `/api/v1/runs/${someRun}/cancel`],
    ["viewer", "POST", `/api/v1/jobs/${someJob}/cancel`],
    ["viewer", "POST", `/api/v1/jobs/${someJob}/approve`, {}],
    ["submitter", "POST", `/api/v1/jobs/${someJob}/approve`, {}],
    ["submitter", "POST", `/api/v1/jobs/${someJob}/reject`, {}],
    ["submitter", "POST", "/api/v1/tokens", { user: "vera", name: "theirs" }],
    ["submitter", "POST", "/api/v1/users", { name: "mallory", role: "admin" }],
    ["submitter", "GET", "/api/v1/users"],
    [
      "submitter",
      "PUT",
      "/api/v1/secrets",
      { scope: { kind: "repo", repo: "acme/web" }, name: "X", value: SECRET },
    ],
    ["submitter", "POST", "/api/v1/secrets/list", {}],
    ["submitter", "POST", "/api/v1/repos", { name: "acme/evil", source: "/" }],
    ["submitter", "PUT", "/api/v1/environments", { repo: "acme/web", name: "prod" }],
    ["approver", "POST", "/api/v1/users", { name: "mallory", role: "admin" }],
    [
      "approver",
      "PUT",
      "/api/v1/secrets",
      { scope: { kind: "repo", repo: "acme/web" }, name: "X", value: SECRET },
    ],
    ["approver", "POST", "/api/v1/tokens", { user: "vera", name: "theirs" }],
    ["approver", "POST", "/api/v1/revocations", { kind: "runner", subject: "rnr_x", reason: "x" }],
    ["approver", "POST", "/api/v1/identity/keys/rotate", {}],
    ["viewer", "POST", "/api/v1/tokens", { user: userIds.alice ?? "usr_aaaaaaaaaaaaaaaa", name: "theirs" }],
  ];

  it.each(attempts)("403s a %s calling %s %s, audited with who asked", async (role, method, path, body) => {
    const token = tokens[role === "approver" ? "bob" : role] as string;
    const before = await auditCount("auth.forbidden");
    const res = await api(method, path, { token, ...(body === undefined ? {} : { body }) });
    expectProblem(res, 403, "FORBIDDEN");
    expect(await auditCount("auth.forbidden")).toBe(before + 1);
    const record = await lastAudit("auth.forbidden");
    expect(record?.actor).toMatch(/^usr_/);
    expect(record?.data).toMatchObject({ tokenId: expect.stringMatching(/^tok_/), user: expect.any(String) });
    expect(JSON.stringify(record)).not.toContain(token.slice(4));
  });

  it("no mallory was created and the secret was not overwritten", async () => {
    const list = await api("GET", "/api/v1/users", { token: tokens.admin });
    expect(list.body).not.toContain("mallory");
    expect(await auditCount("secret.created")).toBe(1);
  });

  it("gives the same 403 whether or not the resource exists (no existence oracle)", async () => {
    const run = await api("POST", "/api/v1/runs", {
      token: tokens.submitter,
      body: { repo: "acme/web", ref: "main", workflow: ci },
    });
    expect(run.status, run.body).toBe(201);
    const runId = (run.json() as { id: string }).id;
    const real = await api("POST", `/api/v1/runs/${runId}/cancel`, { token: tokens.viewer });
    const fake = await api("POST", `/api/v1/runs/${someRun}/cancel`, { token: tokens.viewer });
    expect([real.status, fake.status]).toEqual([403, 403]);
    expect(real.json().detail).toBe(fake.json().detail);
    // Unauthenticated: 401 before any lookup.
    const a = await api("GET", `/api/v1/runs/${runId}`);
    const b = await api("GET", `/api/v1/runs/${someRun}`);
    expect([a.status, b.status]).toEqual([401, 401]);
    // Another user's token id and a made-up one: the same 403 for a non-admin.
    const adminTok = (
      await sql<{
        id: string;
      }>`select id from api_tokens where user_id = ${users.admin.userId} limit 1`.execute(controller.db)
    ).rows[0]?.id;
    const x = await api("DELETE", `/api/v1/tokens/${adminTok}`, { token: tokens.viewer });
    const y = await api("DELETE", `/api/v1/tokens/tok_${"z".repeat(16)}`, { token: tokens.viewer });
    expect([x.status, y.status]).toEqual([403, 403]);
    expect(x.json().detail).toBe(y.json().detail);
    await api("POST", `/api/v1/runs/${runId}/cancel`, { token: tokens.submitter });
  });
});

describe("the actor is the authenticated caller", () => {
  it.each<[string, string, Record<string, unknown>]>([
    ["POST", "/api/v1/runs", { repo: "acme/web", ref: "main", actor: "local-admin" }],
    ["POST", "/api/v1/runs", { repo: "acme/web", ref: "main", user: "local-admin" }],
    ["POST", "/api/v1/runs", { repo: "acme/web", ref: "main", principal: { role: "admin" } }],
    ["POST", `/api/v1/jobs/${someJob}/approve`, { actor: "alice" }],
    ["POST", "/api/v1/users", { name: "eve", role: "viewer", actor: "local-admin" }],
    ["POST", "/api/v1/tokens", { name: "x", actor: "local-admin" }],
    ["POST", "/api/v1/tokens", { name: "x", userId: "usr_aaaaaaaaaaaaaaaa" }],
    ["PUT", "/api/v1/environments", { repo: "acme/web", name: "x", actor: "local-admin" }],
  ])("refuses a body naming someone else (%s %s)", async (method, path, body) => {
    const res = await api(method, path, { token: tokens.admin, body });
    expectProblem(res, 400, "REQUEST_INVALID");
  });

  it("records the caller as the run's actor, whatever headers claim", async () => {
    const res = await api("POST", "/api/v1/runs", {
      token: tokens.submitter,
      body: { repo: "acme/web", ref: "main", workflow: ci },
      headers: {
        "x-airlock-actor": "local-admin",
        "x-forwarded-user": "local-admin",
        "x-remote-user": "local-admin",
        "x-user": "alice",
      },
    });
    expect(res.status, res.body).toBe(201);
    const run = res.json() as { id: string; actor: string };
    expect(run.actor).toBe("sam");
    const actors = new Set((await listAudit(controller.db, { runId: run.id })).map((r) => r.actor));
    expect(actors).toContain("sam");
    expect(actors).not.toContain("local-admin");
    expect(actors).not.toContain("alice");
    await api("POST", `/api/v1/runs/${run.id}/cancel`, { token: tokens.submitter });
  });
});

describe("environment approval rules hold over the API", () => {
  it("only the environment's approvers, never the run's own submitter, release a gated job", async () => {
    const env = await api("PUT", "/api/v1/environments", {
      token: tokens.admin,
      body: {
        repo: "acme/web",
        name: "prod",
        branches: ["main"],
        requiredApprovals: 1,
        approvers: ["alice"],
        preventSelfReview: true,
      },
    });
    expect(env.status, env.body).toBe(200);
    const run = await api("POST", "/api/v1/runs", {
      token: tokens.alice,
      body: { repo: "acme/web", ref: "main", workflow: ".airlock/workflows/deploy.yml" },
    });
    expect(run.status, run.body).toBe(201);
    const view = run.json() as { id: string; jobs: { id: string; state: string }[] };
    const job = view.jobs[0] as { id: string; state: string };
    expect(job.state).toBe("waiting_approval");

    // bob is an approver by role, but not of this environment; sam is not an approver at all;
    // alice is the environment's approver but started the run herself.
    expectProblem(await api("POST", `/api/v1/jobs/${job.id}/approve`, { token: tokens.bob, body: {} }), 403);
    expectProblem(
      await api("POST", `/api/v1/jobs/${job.id}/approve`, { token: tokens.submitter, body: {} }),
      403,
    );
    expectProblem(
      await api("POST", `/api/v1/jobs/${job.id}/approve`, { token: tokens.alice, body: {} }),
      403,
    );
    expectProblem(
      await api("POST", `/api/v1/jobs/${job.id}/approve`, { token: tokens.admin, body: {} }),
      403,
    );
    const after = await api("GET", `/api/v1/jobs/${job.id}`, { token: tokens.viewer });
    expect(after.json().state).toBe("waiting_approval");
    const refusals = await listAudit(controller.db, { jobId: job.id, type: "job.approval_refused" });
    expect(refusals.map((r) => r.actor)).toEqual(["bob", "alice", "local-admin"]);
    await api("POST", `/api/v1/runs/${view.id}/cancel`, { token: tokens.admin });
  });
});

describe("request shapes", () => {
  it.each(
    [
      "/api/v1/artifacts/..%2f..%2fetc%2fpasswd/download",
      "/api/v1/artifacts/%2e%2e/download",
      "/api/v1/artifacts/art_..%2f..%2f..%2fetc/download",
      `/api/v1/artifacts/sha256:${"0".repeat(63)}%2f/download`,
      "/api/v1/jobs/%2e%2e/logs",
      "/api/v1/jobs/..%2f..%2fetc%2fpasswd/logs",
      "/api/v1/jobs/job_%00aaaaaaaaaaaaaaa/logs",
      `/api/v1/jobs/${encodeURIComponent("job_ａａａａａａａａａａａａａａａａ")}`,
      `/api/v1/jobs/${encodeURIComponent("job_aaaaaaaaaaaaaaaa\u0301")}`,
      `/api/v1/jobs/job_${"a".repeat(5000)}`,
      "/api/v1/runs/%E0%A4%A",
      `/api/v1/runs/RUN_${"A".repeat(16)}`,
      "/api/v1/tokens/..%2F..%2Fusers",
    ].map((p) => [p.length > 90 ? `${p.slice(0, 60)}… (${p.length} chars)` : p, p]),
  )("refuses %s with a problem and no file content", async (_label, path) => {
    for (const method of ["GET", "DELETE"]) {
      const res = await api(method, path, { token: tokens.admin });
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.headers.get("content-type")).toMatch(/^application\/problem\+json/);
      expect(res.body).not.toMatch(/root:|\/bin\/(ba)?sh/);
      expect(res.body.length).toBeLessThan(3000);
    }
  });

  it("resolves raw ../ segments to a route or nothing, never to a file", async () => {
    const out = await raw(
      `GET /api/v1/jobs/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.admin}\r\nConnection: close\r\n\r\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 404 /);
    expect(out).not.toContain("root:");
  });

  it("ignores method-override headers and parameters", async () => {
    const res = await api("POST", "/api/v1/tokens", { token: tokens.viewer, body: { name: "victim" } });
    const victim = res.json() as { id: string; token: string };
    for (const header of ["x-http-method-override", "x-http-method", "x-method-override"]) {
      const r = await api("POST", `/api/v1/tokens/${victim.id}`, {
        token: tokens.viewer,
        headers: { [header]: "DELETE" },
      });
      expectProblem(r, 404, "NOT_FOUND");
      const g = await api("GET", "/api/v1/runs", { token: tokens.viewer, headers: { [header]: "POST" } });
      expect(g.status).toBe(200);
    }
    expect(
      (await api("GET", `/api/v1/tokens/${victim.id}?_method=DELETE`, { token: tokens.viewer })).status,
    ).toBe(404);
    expect((await api("GET", "/api/v1/runs", { token: victim.token })).status).toBe(200);
  });

  it("never reads a body that is not declared JSON as JSON", async () => {
    const payload = JSON.stringify({ name: "textuser", role: "admin" });
    const text = await api("POST", "/api/v1/users", {
      token: tokens.admin,
      raw: payload,
      headers: { "content-type": "text/plain" },
    });
    expectProblem(text, 400, "REQUEST_INVALID");
    for (const ct of [
      "application/x-www-form-urlencoded",
      "multipart/form-data; boundary=x",
      "application/xml",
    ]) {
      const r = await api("POST", "/api/v1/users", {
        token: tokens.admin,
        raw: "name=formuser&role=admin",
        headers: { "content-type": ct },
      });
      expectProblem(r, 415, "REQUEST_INVALID");
    }
    const list = await api("GET", "/api/v1/users", { token: tokens.admin });
    expect(list.body).not.toMatch(/textuser|formuser/);
  });

  it("bounds bodies: 413 with a token, 401 without one, before anything is read", async () => {
    const big = JSON.stringify({ repo: "acme/web", ref: "main", inputs: { x: "y".repeat(300 * 1024) } });
    expectProblem(
      await api("POST", "/api/v1/runs", {
        token: tokens.submitter,
        raw: big,
        headers: { "content-type": "application/json" },
      }),
      413,
    );
    expectProblem(
      await api("POST", "/api/v1/runs", { raw: big, headers: { "content-type": "application/json" } }),
      401,
    );
    // Chunked, no Content-Length: the limit still holds.
    const chunk = "x".repeat(64 * 1024);
    let chunked = "";
    for (let i = 0; i < 6; i++) chunked += `${chunk.length.toString(16)}\r\n${chunk}\r\n`;
    const out = await raw(
      `POST /api/v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens.submitter}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n${chunked}0\r\n\r\n`,
    );
    expect(out).toMatch(/^HTTP\/1\.1 413 /);
  });

  it("refuses __proto__ and constructor keys, and nothing is polluted", async () => {
    for (const payload of [
      '{"name":"protouser","role":"viewer","__proto__":{"role":"admin","polluted":true}}',
      '{"name":"ctoruser","role":"viewer","constructor":{"prototype":{"polluted":true}}}',
      '{"repo":"acme/web","ref":"main","inputs":{"__proto__":{"polluted":"yes"}}}',
    ]) {
      const path = payload.includes("repo") ? "/api/v1/runs" : "/api/v1/users";
      const res = await api("POST", path, {
        token: tokens.admin,
        raw: payload,
        headers: { "content-type": "application/json" },
      });
      expectProblem(res, 400, "REQUEST_INVALID");
    }
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((await api("GET", "/api/v1/users", { token: tokens.admin })).body).not.toMatch(
      /protouser|ctoruser/,
    );
  });

  it("refuses arrays and objects where the query takes one value", async () => {
    for (const q of [
      "limit=1&limit=500",
      "repo=acme/web&repo=acme/other",
      "repo[]=acme/web",
      "limit[$gt]=0",
    ]) {
      expectProblem(await api("GET", `/api/v1/runs?${q}`, { token: tokens.viewer }), 400, "REQUEST_INVALID");
    }
    expectProblem(
      await api("GET", `/api/v1/jobs/${someJob}/logs?follow=true&follow=false`, { token: tokens.viewer }),
      400,
    );
    expectProblem(await api("GET", "/api/v1/audit?limit=10&limit=100000", { token: tokens.viewer }), 400);
  });

  it("names an artifact download file safely whatever the artifact is called", () => {
    expect(safeFileName('a"; filename=evil.sh\r\nSet-Cookie: x')).toMatch(/^[A-Za-z0-9._-]+$/);
    expect(safeFileName("../../etc/passwd")).not.toContain("/");
    expect(safeFileName("..")).not.toMatch(/^\./);
    expect(safeFileName("")).toBe("artifact");
  });
});

describe("server defaults", () => {
  it("answers unknown routes and methods with problem+json 404, unauthenticated callers included", async () => {
    for (const [method, path] of [
      ["GET", "/api/v1/nope"],
      ["GET", "/API/V1/RUNS"],
      ["PATCH", "/api/v1/runs"],
      ["DELETE", "/api/v1/runs"],
      ["GET", "/api/v2/runs"],
      ["GET", "/"],
      ["GET", `/api/v1/${tokens.admin}`],
    ] as const) {
      const res = await api(method, path);
      const body = expectProblem(res, 404, "NOT_FOUND");
      expect(JSON.stringify(body)).not.toContain((tokens.admin as string).slice(4));
    }
  });

  it("grants no other origin anything: no CORS headers, no preflight", async () => {
    const pre = await api("OPTIONS", "/api/v1/runs", {
      headers: {
        origin: "https://evil.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "authorization",
      },
    });
    expect(pre.status).toBe(404);
    const get = await api("GET", "/api/v1/runs", {
      token: tokens.viewer,
      headers: { origin: "https://evil.example" },
    });
    for (const res of [pre, get]) {
      for (const [name] of res.headers) expect(name).not.toMatch(/^access-control-/);
    }
    expect(get.headers.get("x-content-type-options")).toBe("nosniff");
    expect(get.headers.get("cache-control")).toBe("no-store");
  });

  it("binds 127.0.0.1 unless told otherwise, and warns when told", async () => {
    const t2 = tempDir("airlock-api-bind-");
    const warnings: string[] = [];
    const server = await startServer({
      config: testConfig(t2.dataDir),
      port: 0,
      handleSignals: false,
      warn: (l) => warnings.push(l),
    });
    try {
      expect(server.app.server.address()).toMatchObject({ address: "127.0.0.1" });
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(warnings).toEqual([]);
    } finally {
      await server.close();
      t2.cleanup();
    }
  });
});

describe("information leaks", () => {
  it("list endpoints never show a secret's value or a token's hash", async () => {
    const list = await api("POST", "/api/v1/secrets/list", { token: tokens.admin, body: {} });
    expect(list.body).toContain("DEPLOY_KEY");
    for (const path of [
      "/api/v1/audit?limit=10000",
      "/api/v1/users",
      "/api/v1/repos",
      "/api/v1/runs",
      "/api/v1/approvals",
    ]) {
      const res = await api("GET", path, { token: tokens.admin });
      expect(res.body).not.toContain(SECRET);
    }
    expect(list.body).not.toContain(SECRET);
  });

  it("no error body, audit record or log line holds a token, a token hash, a secret, a stack or a host path", async () => {
    const { rows } = await sql<{ hash: string }>`select hash from api_tokens`.execute(controller.db);
    const secrets = [...Object.values(tokens).map((t) => t.slice(4)), ...rows.map((r) => r.hash), SECRET];
    const audit = JSON.stringify(await listAudit(controller.db));
    expect(errorBodies.length).toBeGreaterThan(50);
    for (const body of errorBodies) {
      for (const s of secrets) expect(body).not.toContain(s);
      expect(body).not.toMatch(/\n\s+at |node_modules|\/work\/|\/tmp\//);
      expect(body).not.toContain(tmp.dir);
    }
    for (const s of secrets) {
      expect(audit).not.toContain(s);
      expect(serverLog).not.toContain(s);
    }
    expect(serverLog.toLowerCase()).not.toContain('"authorization"');
  });
});

describe("audit log tampering, through `airlock audit verify`", () => {
  let airlock: Airlock;
  let pristine: string;

  const withDb = <T>(body: (db: Database.Database) => T): T => {
    const db = new Database(airlock.database);
    try {
      return body(db);
    } finally {
      db.close();
    }
  };
  /** Puts the database back as it was before the attack. */
  const restore = () => {
    for (const s of ["-wal", "-shm"]) rmSync(`${airlock.database}${s}`, { force: true });
    copyFileSync(pristine, airlock.database);
  };
  const verify = async (...args: string[]) => {
    const r = await airlock.cli("audit", "verify", ...args);
    return { status: r.status, out: r.stdout + r.stderr };
  };

  beforeAll(async () => {
    airlock = Airlock.create("api-audit");
    for (const args of [
      ["user", "add", "ann", "--role", "viewer"],
      ["user", "add", "ben", "--role", "submitter"],
      ["token", "issue", "--user", "ann"],
      ["user", "add", "cat", "--role", "approver"],
      ["token", "issue", "--user", "cat"],
    ]) {
      const r = await airlock.cli(...args);
      expect(r.status, r.stderr).toBe(0);
    }
    // Checkpoint the WAL so the main file holds everything, then keep a copy to restore from.
    withDb((db) => db.pragma("wal_checkpoint(TRUNCATE)"));
    pristine = join(airlock.dataDir, "pristine.db");
    copyFileSync(airlock.database, pristine);
  }, 120_000);

  afterAll(() => airlock?.cleanup());

  it("is intact, and `audit head` prints an anchor that verifies", async () => {
    const head = await airlock.cli("audit", "head");
    expect(head.stdout.trim()).toMatch(/^\d+:[0-9a-f]{64}$/);
    const v = await verify("--anchor", head.stdout.trim());
    expect(v.status, v.out).toBe(0);
    expect(v.out).toMatch(/1 anchor\(s\) held/);
  });

  it.each<[string, string, RegExp]>([
    ["edit a payload", `update audit_events set data = '{"forged":true}' where seq = 3`, /edited: record 3 /],
    ["edit a hash", `update audit_events set hash = '${"0".repeat(64)}' where seq = 2`, /edited: record 2 /],
    [
      "edit the actor",
      `update audit_events set actor = 'usr_someoneelse' where seq = 4`,
      /edited: record 4 /,
    ],
    ["delete a middle record", "delete from audit_events where seq = 3", /missing: record 3 missing/],
    [
      "delete the last records",
      "delete from audit_events where seq >= (select max(seq) - 1 from audit_events)",
      /truncated: /,
    ],
    ["delete the head row", "delete from audit_head", /truncated: the log's head row is missing/],
    [
      "reorder two records",
      "update audit_events set seq = -1 where seq = 2; update audit_events set seq = 2 where seq = 3; update audit_events set seq = 3 where seq = -1",
      /record 2 /,
    ],
    [
      "insert a forged record between two",
      "insert into audit_events (seq, id, at, type, actor, data, prev_hash, hash) select 2.5, 'evt_forged', at, 'user.created', actor, '{}', hash, hash from audit_events where seq = 2",
      /inserted: a record numbered 2\.5 \(evt_forged\)/,
    ],
    [
      "append a forged record after the head",
      "insert into audit_events (seq, id, at, type, actor, data, prev_hash, hash) select seq + 1, 'evt_forged', at, 'user.created', actor, '{}', hash, hash from audit_events where seq = (select max(seq) from audit_events)",
      /inserted: record \d+ comes after the log's head/,
    ],
    [
      "break a record's JSON",
      "update audit_events set data = '{not json' where seq = 2",
      /edited: record 2 .*not the JSON object/,
    ],
  ])("names it when someone tries to %s", async (_label, statement, expected) => {
    try {
      withDb((db) => db.exec(statement));
      const v = await verify();
      expect(v.status, v.out).toBe(6);
      expect(v.out).toMatch(/audit log TAMPERED/);
      expect(v.out).toMatch(expected);
    } finally {
      restore();
    }
  });

  it("names a chain cut back or rewritten wholesale once an anchor was exported", async () => {
    const anchor = (await airlock.cli("audit", "head")).stdout.trim();
    const anchorFile = join(airlock.dataDir, "anchors.txt");
    writeFileSync(anchorFile, `# exported by cron\n${anchor}\n`);
    const { recordHash } = await import("../../src/audit/chain.js");
    const rehash = (db: Database.Database) => {
      const rows = db.prepare("select * from audit_events order by seq").all() as Record<string, unknown>[];
      let prev = "0".repeat(64);
      for (const r of rows) {
        const hash = recordHash({
          seq: Number(r.seq),
          id: r.id as string,
          at: r.at as string,
          type: r.type as string,
          actor: r.actor as string,
          runId: r.run_id as string | null,
          jobId: r.job_id as string | null,
          runnerId: r.runner_id as string | null,
          data: JSON.parse(r.data as string) as Record<string, unknown>,
          prevHash: prev,
        });
        db.prepare("update audit_events set prev_hash = ?, hash = ? where seq = ?").run(prev, hash, r.seq);
        prev = hash;
      }
      db.prepare("update audit_head set seq = (select max(seq) from audit_events), hash = ?").run(prev);
    };
    try {
      // Rewrite a record and recompute every hash and the head: consistent, so only the anchor tells.
      withDb((db) => {
        db.exec(`update audit_events set data = '{"forged":true}' where seq = 2`);
        rehash(db);
      });
      expect((await verify()).status).toBe(0);
      const v = await verify("--anchor-file", anchorFile);
      expect(v.status, v.out).toBe(6);
      expect(v.out).toMatch(/rewritten: record \d+ does not match the anchor/);
      restore();
      // Cut the tail and move the head back.
      withDb((db) => {
        db.exec("delete from audit_events where seq >= (select max(seq) - 1 from audit_events)");
        rehash(db);
      });
      expect((await verify()).status).toBe(0);
      const t = await verify("--anchor", anchor);
      expect(t.status, t.out).toBe(6);
      expect(t.out).toMatch(/truncated: an anchor exported earlier says record \d+ existed/);
    } finally {
      restore();
    }
    const bad = await verify("--anchor", "12:nothex");
    expect(bad.status).not.toBe(0);
    expect(bad.out).toMatch(/SEQ:HASH/);
    expect(existsSync(anchorFile)).toBe(true);
  });
});
