import { createServer } from "node:net";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  makeGitRepo,
  openTestController,
  seedUsers,
  type TestUsers,
  tempDir,
} from "../../test/fixtures/server.js";
import type { AirlockClient } from "../cli/client.js";
import { createHttpClient } from "../cli/http-client.js";
import { systemClock } from "../clock.js";
import type { Controller } from "../controller/controller.js";
import { AirlockError } from "../errors.js";
import { type LogLine, LogPipeline, logBus } from "../logs/pipeline.js";
import { buildApp } from "./app.js";
import { isLoopbackHost } from "./loopback.js";

const workflow = `name: ci
on: push
jobs:
  build:
    runs-on: airlock
    steps:
      - run: echo hello
`;
const badWorkflow = workflow.replace("steps:", "stepz:");

let tmp: ReturnType<typeof tempDir>;
let controller: Controller;
let app: FastifyInstance;
let users: TestUsers;
let baseUrl: string;
let client: AirlockClient;
let goodRepo: string;
let badRepo: string;

beforeAll(async () => {
  tmp = tempDir("airlock-http-");
  controller = await openTestController(tmp.dataDir);
  users = await seedUsers(controller);
  goodRepo = makeGitRepo(tmp.dir, "good", { ".airlock/workflows/ci.yml": workflow });
  badRepo = makeGitRepo(tmp.dir, "bad", { ".airlock/workflows/ci.yml": badWorkflow });
  app = buildApp({ controller });
  baseUrl = await app.listen({ host: "127.0.0.1", port: 0 });
  client = createHttpClient({ baseUrl, token: users.adminToken, pollMs: 50 });
});

afterAll(async () => {
  await client?.close();
  await app?.close();
  await controller?.close();
  tmp?.cleanup();
});

async function caught(p: Promise<unknown>): Promise<AirlockError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AirlockError);
  return err as AirlockError;
}

async function until(check: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function writeLines(jobId: string, lines: string[]): Promise<void> {
  const pipeline = new LogPipeline(controller.db, jobId, systemClock);
  for (const line of lines) pipeline.write(0, "stdout", `${line}\n`);
  await pipeline.close();
}

describe("http client against a listening server", () => {
  it("round-trips repos and runs", async () => {
    expect(await client.listRepos()).toEqual([]);
    const repo = await client.addRepo({ name: "acme/good", source: goodRepo });
    await client.addRepo({ name: "acme/bad", source: badRepo });
    expect(repo).toMatchObject({ name: "acme/good", id: expect.stringMatching(/^repo_/) });
    expect((await client.listRepos()).map((r) => r.name)).toEqual(["acme/bad", "acme/good"]);

    const run = await client.submitRun({ repo: "acme/good", ref: "main" });
    expect(run).toMatchObject({ repo: "acme/good", actor: "local-admin", jobs: [expect.anything()] });
    expect((await client.listRuns({ repo: "acme/good" })).map((r) => r.id)).toEqual([run.id]);
    expect((await client.getRun(run.id)).jobs?.[0]?.id).toBe(run.jobs?.[0]?.id);
    const job = await client.getJob(run.jobs?.[0]?.id as string);
    expect(job.steps).toBeDefined();
  });

  it("turns problems back into the same AirlockError", async () => {
    const missing = await caught(client.getRun(`run_${"b".repeat(16)}`));
    expect(missing.code).toBe("NOT_FOUND");
    expect(missing.message).toBe(`run run_${"b".repeat(16)} does not exist`);
    expect(missing.hint).toMatch(/airlock runs list/);

    const invalid = await caught(client.submitRun({ repo: "acme/bad", ref: "main" }));
    expect(invalid.code).toBe("WORKFLOW_INVALID");
    expect(invalid.position).toEqual({ file: ".airlock/workflows/ci.yml", line: 6, col: 5 });
    // Same message as the server's error: the position appears once.
    expect(invalid.message).toMatch(/^\.airlock\/workflows\/ci\.yml:6:5: [^:]/);
    expect(invalid.message.match(/ci\.yml:6:5/g)).toHaveLength(1);
    expect(invalid.details?.errors).toEqual([expect.objectContaining({ line: 6, col: 5 })]);

    const stranger = createHttpClient({ baseUrl, token: `alk_${"Z".repeat(43)}` });
    const unauth = await caught(stranger.listRuns({}));
    expect(unauth.code).toBe("UNAUTHENTICATED");
    expect(unauth.message).not.toContain("Z".repeat(43));
    await stranger.close();

    const viewer = createHttpClient({ baseUrl, token: users.viewerToken });
    expect((await caught(viewer.submitRun({ repo: "acme/good", ref: "main" }))).code).toBe("FORBIDDEN");
    expect((await caught(viewer.createUser({ name: "x", role: "viewer" }))).code).toBe("FORBIDDEN");
    await viewer.close();
  });

  it("reports SERVER_UNREACHABLE naming the URL for a closed port", async () => {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const gone = createHttpClient({ baseUrl: `http://127.0.0.1:${port}`, token: users.adminToken });
    const err = await caught(gone.listRuns({}));
    expect(err.code).toBe("SERVER_UNREACHABLE");
    expect(err.message).toContain(`http://127.0.0.1:${port}`);
    expect(err.message).not.toContain(users.adminToken);
    await gone.close();
  });

  it("will not send a token over plain http off this machine", () => {
    expect(() => createHttpClient({ baseUrl: "http://ci.example.com:8480", token: "t" })).toThrow(
      /plain http/,
    );
    expect(() => createHttpClient({ baseUrl: "http://u:p@127.0.0.1:1", token: "t" })).toThrow(
      /user name or password/,
    );
    expect(() => createHttpClient({ baseUrl: "https://ci.example.com", token: "t" })).not.toThrow();
  });

  it("knows loopback from the rest", () => {
    for (const h of ["127.0.0.1", "127.9.8.7", "localhost", "::1", "[::1]"])
      expect(isLoopbackHost(h)).toBe(true);
    for (const h of ["0.0.0.0", "::", "10.0.0.1", "example.com", "127.0.0.1.example.com"]) {
      expect(isLoopbackHost(h)).toBe(false);
    }
  });

  it("issues, uses and revokes tokens", async () => {
    const issued = await client.issueToken({ user: "vera", name: "ci", ttlSeconds: 600 });
    const vera = createHttpClient({ baseUrl, token: issued.token });
    expect(Array.isArray(await vera.listRuns({}))).toBe(true);
    const revoked = await client.revokeToken(issued.id);
    expect(revoked.revokedAt).not.toBeNull();
    expect((await caught(vera.listRuns({}))).code).toBe("UNAUTHENTICATED");
    await vera.close();
    expect((await client.listUsers()).map((u) => u.name)).toEqual(expect.arrayContaining(["vera", "sam"]));
  });
});

describe("log streaming", () => {
  it("returns stored lines, then follows live and polled lines until the job finishes", async () => {
    const run = await client.submitRun({ repo: "acme/good", ref: "main" });
    const jobId = run.jobs?.[0]?.id as string;
    await writeLines(jobId, ["one", "two"]);

    const stored: LogLine[] = [];
    for await (const line of client.logs(jobId, { follow: false })) stored.push(line);
    expect(stored.map((l) => l.data).join("")).toBe("one\ntwo\n");

    const seen: LogLine[] = [];
    const following = (async () => {
      for await (const line of client.logs(jobId, { follow: true })) seen.push(line);
    })();
    await until(() => seen.length === 2);
    // Live, through this process's logBus.
    await writeLines(jobId, ["three"]);
    await until(() => seen.length === 3);
    // As if another process wrote it: straight into the store, no bus event.
    await controller.db
      .insertInto("log_chunks")
      .values({ job_id: jobId, step_idx: 1, stream: "stderr", data: "four\n", at: new Date().toISOString() })
      .execute();
    await until(() => seen.length === 4);
    await client.cancel(jobId);
    await following;
    expect(seen.map((l) => l.data)).toEqual(["one\n", "two\n", "three\n", "four\n"]);
    expect(seen.map((l) => l.stream)).toEqual(["stdout", "stdout", "stdout", "stderr"]);
    expect(new Set(seen.map((l) => l.seq)).size).toBe(4);

    const after: LogLine[] = [];
    for await (const line of client.logs(jobId, { follow: true, afterSeq: seen[2]?.seq as number }))
      after.push(line);
    expect(after.map((l) => l.data)).toEqual(["four\n"]);

    const changes: string[] = [];
    const done = await client.waitForRun(run.id, (r) => changes.push(r.state));
    expect(done.state).toBe("cancelled");
    expect(changes.at(-1)).toBe("cancelled");
  });

  it("drops the follower when the client goes away", async () => {
    const run = await client.submitRun({ repo: "acme/good", ref: "main" });
    const jobId = run.jobs?.[0]?.id as string;
    await writeLines(jobId, ["hi"]);
    for await (const line of client.logs(jobId, { follow: true })) {
      expect(line.data).toBe("hi\n");
      expect(logBus.listenerCount(jobId)).toBe(1);
      break;
    }
    await until(() => logBus.listenerCount(jobId) === 0);
    await client.cancel(run.id);
  });

  it("a bad job id is a problem, not an empty stream", async () => {
    const err = await caught(
      (async () => {
        for await (const _ of client.logs(`job_${"c".repeat(16)}`, { follow: true })) break;
      })(),
    );
    expect(err.code).toBe("NOT_FOUND");
  });

  it("closing the server ends open follows", async () => {
    const run = await client.submitRun({ repo: "acme/good", ref: "main" });
    const jobId = run.jobs?.[0]?.id as string;
    const other = buildApp({ controller });
    const url = await other.listen({ host: "127.0.0.1", port: 0 });
    const c = createHttpClient({ baseUrl: url, token: users.adminToken });
    await writeLines(jobId, ["x"]);
    const seen: LogLine[] = [];
    const following = (async () => {
      for await (const line of c.logs(jobId, { follow: true })) seen.push(line);
    })();
    await until(() => seen.length === 1);
    const started = Date.now();
    await other.close();
    await following;
    expect(Date.now() - started).toBeLessThan(2000);
    expect(logBus.listenerCount(jobId)).toBe(0);
    await c.close();
    await client.cancel(run.id);
  });
});
