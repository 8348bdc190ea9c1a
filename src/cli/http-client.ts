import { Readable } from "node:stream";
import { Agent, fetch, type Response } from "undici";
import { z } from "zod";
import type { ArtifactInfo } from "../artifacts/catalog.js";
import type { Promotion } from "../artifacts/gate/index.js";
import type { AuditRecord } from "../audit/events.js";
import type { AuditAnchor, AuditVerification } from "../audit/verify.js";
import type { IssuedToken, TokenInfo, UserInfo } from "../auth/index.js";
import type { Attestations } from "../controller/attestations.js";
import type { Verification } from "../controller/verify.js";
import type { JobView, RunView } from "../controller/views.js";
import { AirlockError, type ErrorCode, errorCodes, formatPosition, type SourcePosition } from "../errors.js";
import type { LogLine } from "../logs/pipeline.js";
import type { Flow, Suggestion } from "../network/proxy/index.js";
import type { Environment } from "../repos/environments.js";
import type { Repo } from "../repos/registry.js";
import type { SecretInfo } from "../secrets/index.js";
import { isLoopbackHost } from "../server/loopback.js";
import type { AirlockClient } from "./client.js";

export interface HttpClientOptions {
  /** The server's origin, e.g. http://127.0.0.1:8480 (the /api/v1 prefix is added here). */
  baseUrl: string;
  token: string;
  /** How often waitForRun polls. */
  pollMs?: number;
  /**
   * Allow plain http to a host that is not loopback. Off by default: the bearer token would cross
   * the network in clear text. Put TLS in front of the server instead.
   */
  allowInsecureHttp?: boolean;
}

// Loose on purpose: the client checks what it relies on and keeps fields a newer server adds.
const jobShape = z.looseObject({ id: z.string(), runId: z.string(), state: z.string() });
const runShape = z.looseObject({ id: z.string(), state: z.string(), jobs: z.array(jobShape).optional() });
const logLineShape = z.object({
  seq: z.number(),
  jobId: z.string(),
  stepIdx: z.number(),
  stream: z.enum(["stdout", "stderr", "system"]),
  data: z.string(),
  at: z.string(),
});
const anyObject = z.looseObject({});
const problemShape = z.looseObject({
  code: z.string().optional(),
  detail: z.string().optional(),
  title: z.string().optional(),
  hint: z.string().optional(),
  position: z.object({ file: z.string(), line: z.number(), col: z.number() }).optional(),
  errors: z.array(z.unknown()).optional(),
  requestId: z.string().optional(),
});

const finishedJobStates = new Set(["torn_down", "denied", "skipped", "cancelled"]);
const finishedRunStates = new Set(["succeeded", "failed", "cancelled"]);

/** The CLI's client for `airlock --server URL`: the same AirlockClient contract, over the HTTP API. */
export function createHttpClient(opts: HttpClientOptions): AirlockClient {
  const origin = checkBaseUrl(opts.baseUrl, opts.allowInsecureHttp ?? false);
  const api = `${origin}/api/v1`;
  const pollMs = opts.pollMs ?? 250;
  // One pool per client so close() really closes its sockets (no keep-alive left holding the process).
  const dispatcher = new Agent({ connect: { timeout: 5_000 } });
  const auth = `Bearer ${opts.token}`;

  async function call(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    let res: Response;
    try {
      res = await fetch(api + path, {
        method,
        dispatcher,
        signal,
        headers: {
          authorization: auth,
          accept: "application/json, application/x-ndjson, application/problem+json",
          ...(body === undefined ? {} : { "content-type": "application/json" }),
        },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (cause) {
      if (signal?.aborted) throw cause;
      throw unreachable(origin, cause);
    }
    if (!res.ok) throw await errorFrom(res);
    return res;
  }

  async function json<T>(method: string, path: string, shape: z.ZodType, body?: unknown): Promise<T> {
    const res = await call(method, path, body);
    let parsed: unknown;
    try {
      parsed = await res.json();
    } catch (cause) {
      throw new AirlockError("INTERNAL", `the server at ${origin} sent a response that is not JSON`, {
        cause,
      });
    }
    const checked = shape.safeParse(parsed);
    if (!checked.success) {
      throw new AirlockError(
        "INTERNAL",
        `the server at ${origin} sent an unexpected response to ${method} ${path}`,
        {
          hint: "the CLI and the server may be different versions",
        },
      );
    }
    return checked.data as T;
  }

  const getRun = (runId: string) => json<RunView>("GET", `/runs/${seg(runId)}`, runShape);

  return {
    mode: "server",
    submitRun: (req) => json<RunView>("POST", "/runs", runShape, req),
    getRun,
    listRuns: (o) =>
      json<RunView[]>("GET", `/runs${query({ repo: o.repo, limit: o.limit })}`, z.array(runShape)),
    getJob: (jobId) => json<JobView>("GET", `/jobs/${seg(jobId)}`, jobShape),
    logs: (jobId, o) => streamLogs(jobId, o),
    async cancel(id) {
      const kind = id.startsWith("job_") ? "jobs" : id.startsWith("run_") ? "runs" : null;
      if (!kind) {
        throw new AirlockError("REQUEST_INVALID", `"${id}" is neither a run id (run_…) nor a job id (job_…)`);
      }
      await json("POST", `/${kind}/${seg(id)}/cancel`, anyObject);
    },
    async waitForRun(runId, onChange) {
      let last = "";
      for (;;) {
        const run = await getRun(runId);
        const key = JSON.stringify([run.state, run.jobs?.map((j) => j.state)]);
        if (key !== last) {
          last = key;
          onChange?.(run);
        }
        if (
          finishedRunStates.has(run.state) &&
          (run.jobs ?? []).every((j) => finishedJobStates.has(j.state))
        ) {
          return run;
        }
        await new Promise((r) => setTimeout(r, pollMs));
      }
    },
    auditVerify: (anchors) =>
      json<AuditVerification>("POST", "/audit/verify", anyObject, anchors?.length ? { anchors } : {}),
    auditHead: () =>
      json<AuditAnchor & { at: string | null }>(
        "GET",
        "/audit/head",
        z.object({ seq: z.number(), hash: z.string(), at: z.string().nullable() }),
      ),
    auditList: (q) =>
      json<AuditRecord[]>(
        "GET",
        `/audit${query({ run: q.runId, job: q.jobId, type: q.type, after: q.afterSeq, limit: q.limit })}`,
        z.array(anyObject),
      ),
    egressFlows: (jobId) => json<Flow[]>("GET", `/jobs/${seg(jobId)}/flows`, z.array(anyObject)),
    egressSuggest: (repo) =>
      json<Suggestion[]>("GET", `/egress/suggest${query({ repo })}`, z.array(anyObject)),
    decideApproval: (jobId, decision, comment) =>
      json<JobView>(
        "POST",
        `/jobs/${seg(jobId)}/${decision === "approved" ? "approve" : "reject"}`,
        anyObject,
        comment ? { comment } : {},
      ),
    listWaitingJobs: () => json<JobView[]>("GET", "/approvals", z.array(anyObject)),
    putEnvironment: (input) => json<Environment>("PUT", "/environments", anyObject, input),
    listEnvironments: (repo) =>
      json<Environment[]>("GET", `/environments${query({ repo })}`, z.array(anyObject)),
    setSecret: (input) => json<SecretInfo>("PUT", "/secrets", anyObject, input),
    listSecrets: (scope) =>
      json<SecretInfo[]>("POST", "/secrets/list", z.array(anyObject), scope ? { scope } : {}),
    deleteSecret: async (input) => {
      await json("POST", "/secrets/delete", anyObject, input);
    },
    setOidcSubject: (repo, customization) =>
      json<Repo>("PUT", "/repos/oidc-subject", anyObject, { repo, customization }),
    rotateSigningKey: (which = "id-token") =>
      json<{ created: string; retired: string | null }>("POST", "/identity/keys/rotate", anyObject, {
        which,
      }),
    listArtifacts: (o) =>
      json<ArtifactInfo[]>("GET", `/artifacts${query({ run: o.runId })}`, z.array(anyObject)),
    async downloadArtifact(ref) {
      const info = await json<ArtifactInfo>("GET", `/artifacts/${seg(ref)}`, anyObject);
      const res = await call("GET", `/artifacts/${seg(ref)}/download`);
      if (!res.body) throw new AirlockError("INTERNAL", `the server at ${origin} sent no artifact body`);
      return { info, tar: Readable.fromWeb(res.body as import("node:stream/web").ReadableStream) };
    },
    attestations: (ref) => json<Attestations>("GET", `/artifacts/${seg(ref)}/attestations`, anyObject),
    verifyArtifact: (req) => json<Verification>("POST", "/artifacts/verify", anyObject, req),
    revoke: (input) => json<{ created: boolean }>("POST", "/revocations", anyObject, input),
    promote: (input) => json<Promotion>("POST", "/artifacts/promote", anyObject, input),
    addRepo: (input) => json<Repo>("POST", "/repos", anyObject, input),
    listRepos: () => json<Repo[]>("GET", "/repos", z.array(anyObject)),
    createUser: (input) => json<UserInfo>("POST", "/users", anyObject, input),
    listUsers: () => json<UserInfo[]>("GET", "/users", z.array(anyObject)),
    issueToken: (input) =>
      json<IssuedToken>("POST", "/tokens", z.looseObject({ id: z.string(), token: z.string() }), input),
    revokeToken: (tokenId) => json<TokenInfo>("DELETE", `/tokens/${seg(tokenId)}`, anyObject),
    close: () => dispatcher.close(),
  };

  /**
   * Reads the NDJSON stream line by line. Leaving the loop early (break, throw) aborts the request,
   * which is how the server learns to drop its follower.
   */
  async function* streamLogs(
    jobId: string,
    o: { follow: boolean; afterSeq?: number },
  ): AsyncGenerator<LogLine> {
    const abort = new AbortController();
    const path = `/jobs/${seg(jobId)}/logs${query({ after: o.afterSeq, follow: o.follow ? "true" : undefined })}`;
    const res = await call("GET", path, undefined, abort.signal);
    const body = res.body;
    if (!body) return;
    const decoder = new TextDecoder();
    let buffered = "";
    try {
      for await (const chunk of body) {
        buffered += decoder.decode(chunk as Uint8Array, { stream: true });
        let nl = buffered.indexOf("\n");
        while (nl !== -1) {
          const text = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (text.trim() !== "") yield parseLine(text);
          nl = buffered.indexOf("\n");
        }
      }
      buffered += decoder.decode();
      if (buffered.trim() !== "") yield parseLine(buffered);
    } catch (cause) {
      if (cause instanceof AirlockError) throw cause;
      throw new AirlockError("SERVER_UNREACHABLE", `the log stream from ${origin} broke off`, {
        hint: "run the command again with --after to continue from the last line shown",
        cause,
      });
    } finally {
      abort.abort();
    }
  }

  function parseLine(text: string): LogLine {
    const checked = logLineShape.safeParse(safeJson(text));
    if (!checked.success)
      throw new AirlockError("INTERNAL", `the server at ${origin} sent a malformed log line`);
    return checked.data;
  }
}

function checkBaseUrl(baseUrl: string, allowInsecure: boolean): string {
  let url: URL;
  try {
    url = new URL(baseUrl);
  } catch {
    throw new AirlockError("CONFIG_INVALID", `"${baseUrl}" is not a server URL`, {
      hint: "use the form http://127.0.0.1:8480",
    });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new AirlockError(
      "CONFIG_INVALID",
      `the server URL must be http:// or https://, not ${url.protocol}`,
    );
  }
  // Credentials in the URL would end up in error messages and shell history; the token has its own flag.
  if (url.username || url.password) {
    throw new AirlockError("CONFIG_INVALID", "the server URL must not contain a user name or password", {
      hint: "pass the API token with --token or AIRLOCK_TOKEN",
    });
  }
  if (url.protocol === "http:" && !allowInsecure && !isLoopbackHost(url.hostname)) {
    throw new AirlockError("CONFIG_INVALID", `refusing to send an API token over plain http to ${url.host}`, {
      hint: "put TLS in front of the server and use https://, or reach it through a loopback tunnel",
    });
  }
  return url.origin;
}

function unreachable(origin: string, cause: unknown): AirlockError {
  const inner = (cause as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  const why =
    typeof inner?.code === "string" ? inner.code : typeof inner?.message === "string" ? inner.message : "";
  return new AirlockError(
    "SERVER_UNREACHABLE",
    `cannot reach the Airlock server at ${origin}${why ? ` (${why})` : ""}`,
    {
      hint: "check that `airlock server` is running there, and the --server / AIRLOCK_SERVER setting",
      cause,
    },
  );
}

/** Rebuilds the server's AirlockError from its problem document: same code, message and hint. */
async function errorFrom(res: Response): Promise<AirlockError> {
  const text = await res.text().catch(() => "");
  const type = res.headers.get("content-type") ?? "";
  const problem = type.includes("json") ? problemShape.safeParse(safeJson(text)) : null;
  if (problem?.success && problem.data.code && Object.hasOwn(errorCodes, problem.data.code)) {
    const p = problem.data;
    const position: SourcePosition | undefined = p.position;
    let message = p.detail ?? p.title ?? `HTTP ${res.status}`;
    // AirlockError prefixes the position to its message; strip it so it is not doubled.
    if (position && message.startsWith(`${formatPosition(position)}: `)) {
      message = message.slice(formatPosition(position).length + 2);
    }
    return new AirlockError(p.code as ErrorCode, message, {
      ...(p.hint === undefined ? {} : { hint: p.hint }),
      ...(position === undefined ? {} : { position }),
      details: {
        status: res.status,
        ...(p.errors === undefined ? {} : { errors: p.errors }),
        ...(p.requestId === undefined ? {} : { requestId: p.requestId }),
      },
    });
  }
  // Not ours (a proxy page, say): keep the status, not the body, which may be a whole HTML page.
  return new AirlockError(
    codeForStatus(res.status),
    `the server answered HTTP ${res.status} ${res.statusText}`.trim(),
    {
      details: { status: res.status },
    },
  );
}

function codeForStatus(status: number): ErrorCode {
  if (status === 401) return "UNAUTHENTICATED";
  if (status === 403) return "FORBIDDEN";
  if (status === 404) return "NOT_FOUND";
  if (status === 409) return "CONFLICT";
  if (status >= 400 && status < 500) return "REQUEST_INVALID";
  if (status === 502 || status === 503 || status === 504) return "SERVER_UNREACHABLE";
  return "INTERNAL";
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function seg(id: string): string {
  return encodeURIComponent(id);
}

function query(params: Record<string, string | number | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined) q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}
