import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { recordAudit } from "../audit/log.js";
import type { Clock } from "../clock.js";
import { AirlockError, isAirlockError } from "../errors.js";
import {
  type IdentityIssuerDeps,
  idTokenRequestPath,
  issueIdTokenForJob,
  parseBearer,
} from "../identity/index.js";
import { type BrokerDeps, exchange } from "../secrets/index.js";
import type { Db } from "../store/database.js";

/**
 * The API a job calls from inside its sandbox, over its own network link: ID tokens (the GitHub
 * `ACTIONS_ID_TOKEN_REQUEST_URL` protocol) and, later, the secrets broker. One listener per job
 * on the job's host-end address, answering only the job's own address: a job cannot reach
 * another job's listener (the network drops it) nor use another job's request token (the token
 * names its job, and the listener only serves its own).
 */
export interface JobApiDeps {
  db: Db;
  clock: Clock;
  issuer: Omit<IdentityIssuerDeps, "db" | "clock">;
  /** Called with every credential handed to a job, so its log masker hides it. */
  onCredential(jobId: string, value: string): void;
  /** The job's masker: an audience it asks for is stored (id_tokens, audit) and must hold no secret. */
  mask(text: string): string;
  broker: BrokerDeps;
}

export interface JobApiListener {
  close(): Promise<void>;
}

const maxBodyBytes = 64 * 1024;

export async function listenJobApi(
  deps: JobApiDeps,
  job: { jobId: string; jobAddr: string; host: string; port: number },
): Promise<JobApiListener> {
  const server: Server = createServer((req, res) => {
    handle(deps, job, req, res).catch((err) => reply(res, 500, { message: "internal error" }, err));
  });
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(job.port, job.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

async function handle(
  deps: JobApiDeps,
  job: { jobId: string; jobAddr: string },
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const from = (req.socket.remoteAddress ?? "").replace(/^::ffff:/, "");
  if (from !== job.jobAddr) return reply(res, 403, { message: "not this job's address" });
  const url = new URL(req.url ?? "/", "http://job-api");
  if (req.method === "GET" && url.pathname === idTokenRequestPath) {
    const audience = url.searchParams.get("audience") ?? undefined;
    if (audience !== undefined && deps.mask(audience) !== audience) {
      // The audience is signed into the token and stored with its record and audit event; one
      // that carries a secret (`&audience=$SECRET`) would put the value in the database in clear.
      await recordAudit(
        deps.db,
        {
          type: "identity.token_request_denied",
          actor: job.jobId,
          jobId: job.jobId,
          data: { reason: "audience_holds_secret", ip: from },
        },
        deps.clock,
      );
      return reply(res, 400, { message: "the requested audience contains a secret of this job" });
    }
    try {
      const minted = await issueIdTokenForJob(
        {
          ...deps.issuer,
          db: deps.db,
          clock: deps.clock,
          // The request token names its job; it must be this listener's job, or it was stolen.
          claimsFor: async (jobId) => {
            if (jobId !== job.jobId) {
              await recordAudit(
                deps.db,
                {
                  type: "identity.token_request_denied",
                  actor: jobId,
                  jobId: job.jobId,
                  data: { reason: "token_of_another_job", ip: from },
                },
                deps.clock,
              );
              throw new AirlockError("UNAUTHENTICATED", "a valid job request token is required");
            }
            return deps.issuer.claimsFor(jobId);
          },
        },
        {
          requestToken: parseBearer(req.headers.authorization),
          audience,
        },
        { ip: from, expectedJob: job.jobId },
      );
      deps.onCredential(job.jobId, minted.token);
      // GitHub's response shape, which @actions/core and curl-based scripts read.
      return reply(res, 200, { count: 1, value: minted.token });
    } catch (err) {
      if (isAirlockError(err)) return reply(res, err.status, { message: err.message });
      throw err;
    }
  }
  if (req.method === "POST" && url.pathname === secretsExchangePath) {
    let body: { secrets?: unknown; audience?: unknown };
    try {
      body = JSON.parse((await readBody(req)).toString("utf8")) as typeof body;
    } catch {
      return reply(res, 400, { message: 'the body must be JSON: {"secrets": ["NAME", …]}' });
    }
    if (!Array.isArray(body.secrets) || !body.secrets.every((n) => typeof n === "string")) {
      return reply(res, 400, { message: "secrets must be a list of names" });
    }
    try {
      const grant = await exchange(
        deps.broker,
        {
          token: parseBearer(req.headers.authorization),
          secrets: body.secrets as string[],
          ...(typeof body.audience === "string" ? { audience: body.audience } : {}),
        },
        { expectJobId: job.jobId, audit: { ip: from }, mask: deps.mask },
      );
      for (const value of Object.values(grant.secrets)) deps.onCredential(job.jobId, value);
      return reply(res, 200, { leaseId: grant.leaseId, expiresAt: grant.expiresAt, secrets: grant.secrets });
    } catch (err) {
      if (isAirlockError(err)) return reply(res, err.status, { message: err.message, code: err.code });
      throw err;
    }
  }
  await drain(req);
  reply(res, 404, { message: "not found" });
}

function reply(res: ServerResponse, status: number, body: unknown, _err?: unknown): void {
  if (res.headersSent) return void res.end();
  res.writeHead(status, { "content-type": "application/json", "cache-control": "no-store" });
  res.end(JSON.stringify(body));
}

/** Where a job exchanges its ID token (audience `<issuer>/secrets`) for a lease of named secrets. */
export const secretsExchangePath = "/api/v1/secrets/exchange";

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > maxBodyBytes) throw new AirlockError("REQUEST_INVALID", "request body too large");
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function drain(req: IncomingMessage): Promise<void> {
  let n = 0;
  for await (const chunk of req) {
    n += (chunk as Buffer).length;
    if (n > maxBodyBytes) break;
  }
}
