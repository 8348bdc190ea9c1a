import { AirlockError } from "../errors.js";
import { issueRequestToken, jobIdentityEnv } from "../identity/index.js";
import type { ProvisionedEgress } from "../network/index.js";
import type { SandboxNetwork } from "../sandbox/index.js";
import type { effectiveEgress } from "./admission.js";
import type { ControllerDeps } from "./deps.js";
import { type JobApiListener, listenJobApi, secretsExchangePath } from "./job-api.js";
import { tokenClaimsFor } from "./job-identity.js";
import { brokerAudience, brokerDeps } from "./job-secrets.js";

/** Everything a job has beyond its sandbox: a network, Airlock's job API, the env that names them. */
export interface JobLink {
  network: SandboxNetwork | undefined;
  env: Record<string, string>;
  jobAddr: string | undefined;
  release(): Promise<void>;
}

export interface JobLinkRequest {
  jobId: string;
  runId: string;
  runnerId: string;
  egress: ReturnType<typeof effectiveEgress>;
  /** The job's `permissions: id-token: write`: it gets the GitHub ID-token request variables. */
  idToken: boolean;
  /** Every credential handed to the job goes here first, so the log masker hides it. */
  onCredential(value: string): void;
  /**
   * The job's masker for text stored outside its log (host names it connects to or looks up,
   * an audience it asks a token for): a job can put a secret anywhere it chooses a string.
   */
  mask(text: string): string;
}

/**
 * A job gets a network of its own only when it may reach something: an allowlist, audit mode, or
 * Airlock's own job API (ID tokens). Otherwise every step has a private loopback-only network,
 * the same outcome without building anything.
 */
export async function provisionJobLink(deps: ControllerDeps, req: JobLinkRequest): Promise<JobLink> {
  const e = req.egress;
  const reaches = e.mode === "audit" || (e.mode === "enforce" && e.allow.length > 0);
  if (!reaches && !req.idToken)
    return { network: undefined, env: {}, jobAddr: undefined, release: async () => {} };
  if (!deps.egress) {
    throw new AirlockError(
      "SANDBOX_UNAVAILABLE",
      `this job needs a network (egress ${e.mode}${req.idToken ? ", ID tokens" : ""}) but this host cannot build job networks: ${deps.egressUnavailable ?? "unknown reason"}`,
      { hint: "run scripts/setup.sh (iproute2, nftables) and check that `nft list ruleset` works as root" },
    );
  }
  const egress: ProvisionedEgress = await deps.egress.provision({
    jobId: req.jobId,
    runId: req.runId,
    runnerId: req.runnerId,
    // Only Airlock's own ports when the job may reach nothing else.
    mode: reaches ? e.mode : "block",
    allow: reaches ? e.allow : [],
    mask: req.mask,
  });
  let api: JobApiListener | undefined;
  const env = { ...egress.env };
  try {
    if (req.idToken) {
      const identity = deps.identity;
      if (!identity) throw new AirlockError("INTERNAL", "the controller has no identity keys");
      const port = deps.config.network.jobApiPort;
      api = await listenJobApi(
        {
          db: deps.db,
          clock: deps.clock,
          issuer: {
            keys: identity.keys,
            issuer: identity.issuer,
            lifetimeSeconds: deps.config.identity.tokenLifetimeSeconds,
            claimsFor: (jobId) => tokenClaimsFor(deps.db, jobId),
          },
          onCredential: (_jobId, value) => req.onCredential(value),
          mask: req.mask,
          broker: brokerDeps(deps),
        },
        { jobId: req.jobId, jobAddr: egress.jobAddr, host: egress.hostAddr, port },
      );
      const issued = await issueRequestToken(deps.db, req.jobId, { clock: deps.clock });
      req.onCredential(issued.token);
      const base = `http://${egress.hostAddr}:${port}`;
      Object.assign(env, jobIdentityEnv(base, issued), {
        AIRLOCK_SECRETS_URL: `${base}${secretsExchangePath}`,
        AIRLOCK_SECRETS_AUDIENCE: brokerAudience(identity.issuer),
      });
    }
  } catch (err) {
    await api?.close();
    await egress.release();
    throw err;
  }
  return {
    network: { enterArgv: egress.enterArgv, resolvConf: egress.resolvConf },
    env,
    jobAddr: egress.jobAddr,
    release: async () => {
      await api?.close();
      await egress.release();
    },
  };
}
