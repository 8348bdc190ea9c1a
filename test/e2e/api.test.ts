import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { issueToken } from "../../src/auth/index.js";
import type { AirlockClient } from "../../src/cli/client.js";
import { createHttpClient } from "../../src/cli/http-client.js";
import { type RunningServer, startServer } from "../../src/server/serve.js";
import { makeGitRepo, seedUsers, tempDir, testConfig } from "../fixtures/server.js";

/**
 * The whole path through the API: a real server (scheduler on, bubblewrap sandbox) on loopback,
 * driven by the CLI's HTTP client the way `airlock --server` drives it.
 */
const workflow = `name: hello
on: push
jobs:
  greet:
    runs-on: airlock
    steps:
      - run: echo hello
`;

let tmp: ReturnType<typeof tempDir>;
let server: RunningServer;
let client: AirlockClient;
let warnings: string[];

beforeAll(async () => {
  tmp = tempDir("airlock-e2e-api-");
  warnings = [];
  server = await startServer({
    config: testConfig(tmp.dataDir),
    port: 0,
    handleSignals: false,
    warn: (line) => warnings.push(line),
  });
  const users = await seedUsers(server.controller);
  // The first token comes from the store directly, as `airlock token issue` (embedded) would do.
  const token = (
    await issueToken(server.controller.db, { userId: users.admin.userId, name: "e2e" }, users.admin)
  ).token;
  client = createHttpClient({ baseUrl: server.url, token });
  const source = makeGitRepo(tmp.dir, "hello", { ".airlock/workflows/ci.yml": workflow });
  await client.addRepo({ name: "acme/hello", source });
});

afterAll(async () => {
  await client?.close();
  await server?.close();
  tmp?.cleanup();
});

describe("e2e api", () => {
  it("listens on loopback without a warning", () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    expect(warnings).toEqual([]);
  });

  it("E2E (needs controller + bwrap sandbox): runs `echo hello` through the API and streams its log", async () => {
    const submitted = await client.submitRun({ repo: "acme/hello", ref: "main" });
    const states: string[] = [];
    const run = await client.waitForRun(submitted.id, (r) => states.push(r.state));
    const job = run.jobs?.[0];
    expect(job, JSON.stringify(run)).toBeDefined();
    expect({ run: run.state, job: job?.conclusion, detail: job?.detail }).toEqual({
      run: "succeeded",
      job: "succeeded",
      detail: job?.detail,
    });
    let text = "";
    for await (const line of client.logs(job?.id as string, { follow: true })) text += line.data;
    expect(text).toContain("hello");
    const view = await client.getJob(job?.id as string);
    expect(view.steps?.every((s) => s.exitCode === 0 || s.exitCode === null)).toBe(true);
    const audit = await client.auditList({ runId: run.id });
    expect(audit.map((e) => e.type)).toEqual(expect.arrayContaining(["job.torn_down"]));
    expect((await client.auditVerify()).ok).toBe(true);
  });
});
