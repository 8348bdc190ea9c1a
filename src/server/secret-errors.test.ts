import { Writable } from "node:stream";
import type { FastifyBaseLogger, FastifyInstance } from "fastify";
import pino from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  bearer,
  openTestController,
  seedUsers,
  type TestUsers,
  tempDir,
} from "../../test/fixtures/server.js";
import type { Controller } from "../controller/controller.js";
import { buildApp } from "./app.js";

/**
 * The secrets API, attacked through its error paths: every refusal of a secret's value or name
 * (too short, too long, wrong type, a value pasted as the name, a body that is not JSON, an
 * unknown key) is a problem document, and neither it, the audit log nor the server's log holds
 * the value that was sent. A value that is stored is never returned or listed either.
 */
let tmp: ReturnType<typeof tempDir>;
let controller: Controller;
let app: FastifyInstance;
let users: TestUsers;
let serverLog = "";

const VALUE = "api-secret-value-7c1d9e";
const scope = { kind: "repo", repo: "acme/web" };

beforeAll(async () => {
  tmp = tempDir("airlock-secret-errors-");
  controller = await openTestController(tmp.dataDir);
  users = await seedUsers(controller);
  const sink = new Writable({
    write(chunk, _enc, done) {
      serverLog += String(chunk);
      done();
    },
  });
  app = buildApp({
    controller,
    logger: pino({ level: "trace" }, sink) as unknown as FastifyBaseLogger,
  });
  await app.ready();
});

afterAll(async () => {
  await app?.close();
  await controller?.close();
  tmp?.cleanup();
});

const put = (payload: unknown, raw = false) =>
  app.inject({
    method: "PUT",
    url: "/api/v1/secrets",
    headers: { ...bearer(users.adminToken), "content-type": "application/json" },
    payload: raw ? (payload as string) : JSON.stringify(payload),
  });

describe("secrets API error bodies", () => {
  it("refuses bad values and names without echoing what was sent", async () => {
    const attempts: [string, Awaited<ReturnType<typeof put>>][] = [
      ["too short", await put({ scope, name: "SHORT", value: "abc" })],
      ["too long", await put({ scope, name: "LONG", value: `${VALUE}${"x".repeat(17 * 1024)}` })],
      ["wrong type", await put({ scope, name: "NUM", value: { nested: VALUE } })],
      ["value as name", await put({ scope, name: VALUE, value: VALUE })],
      [
        "value as reserved name",
        await put({ scope, name: `GITHUB_${VALUE.replace(/-/g, "_")}`, value: VALUE }),
      ],
      ["unknown key", await put({ scope, name: "OK_NAME", value: VALUE, [VALUE]: VALUE })],
      [
        "not json",
        await put(`{"scope":{"kind":"repo","repo":"acme/web"},"name":"X","value":"${VALUE}`, true),
      ],
      ["bad scope", await put({ scope: { kind: "repo", repo: VALUE }, name: "X", value: VALUE })],
    ];
    for (const [label, res] of attempts) {
      expect(res.statusCode, label).toBeGreaterThanOrEqual(400);
      expect(res.statusCode, label).toBeLessThan(500);
      expect(res.body, label).not.toContain(VALUE);
      expect(res.body.toUpperCase(), label).not.toContain(VALUE.toUpperCase().replace(/-/g, "_"));
      expect(res.body, label).not.toContain('abc"');
    }
  });

  it("never returns, lists or logs a stored value", async () => {
    const set = await put({ scope, name: "STORED", value: VALUE });
    expect(set.statusCode).toBe(200);
    expect(set.body).not.toContain(VALUE);
    const list = await app.inject({
      method: "POST",
      url: "/api/v1/secrets/list",
      headers: bearer(users.adminToken),
      payload: {},
    });
    expect(list.statusCode).toBe(200);
    expect(list.body).toContain("STORED");
    expect(list.body).not.toContain(VALUE);
    const audit = await app.inject({
      method: "GET",
      url: "/api/v1/audit",
      headers: bearer(users.adminToken),
    });
    expect(audit.body).toContain("secret.created");
    expect(audit.body).not.toContain(VALUE);
    expect(serverLog.length).toBeGreaterThan(0);
    expect(serverLog).not.toContain(VALUE);
  });
});
