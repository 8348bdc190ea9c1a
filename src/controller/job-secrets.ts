import { AirlockError } from "../errors.js";
import { checkIdToken, issueIdTokenForJob, issueRequestToken } from "../identity/index.js";
import { type BrokerDeps, resolveJobSecrets } from "../secrets/index.js";
import type { ControllerDeps } from "./deps.js";
import { tokenClaimsFor } from "./job-identity.js";
import type { StoredJobSpec } from "./job-runner.js";

/** The broker's audience: tokens minted for anything else (a cloud) are never exchanged here. */
export function brokerAudience(issuer: string): string {
  return `${issuer}/secrets`;
}

/** The secrets broker as this controller runs it: our keys, our store, our jobs' liveness. */
export function brokerDeps(deps: ControllerDeps): BrokerDeps {
  const identity = deps.identity;
  if (!identity) throw new AirlockError("INTERNAL", "the controller has no identity keys");
  return {
    db: deps.db,
    kek: deps.kek,
    policy: deps.policy,
    audience: brokerAudience(identity.issuer),
    clock: deps.clock,
    verify: (token, audience) =>
      checkIdToken(
        { db: deps.db, issuer: identity.issuer, keys: identity.keys, clock: deps.clock },
        token,
        audience,
      ),
    jobForToken: async (payload) =>
      (
        await deps.db
          .selectFrom("id_tokens")
          .select("job_id")
          .where("jti", "=", payload.jti)
          .executeTakeFirst()
      )?.job_id,
    jobLiveness: async ({ jobId, runId }) => {
      const job = await deps.db
        .selectFrom("jobs")
        .select(["state", "run_id", "spec", "started_at", "created_at"])
        .where("id", "=", jobId)
        .executeTakeFirst();
      if (!job || job.run_id !== runId || !["provisioning", "running"].includes(job.state))
        return { live: false };
      const spec = JSON.parse(job.spec) as StoredJobSpec;
      const start = Date.parse(job.started_at ?? deps.clock.now().toISOString());
      // The job's own exchange may ask only for what its workflow declares, as provisioning does.
      return {
        live: true,
        endsAt: new Date(start + spec.timeoutMinutes * 60_000),
        declared: spec.secrets ?? [],
      };
    },
  };
}

/**
 * Secrets the workflow declares for a job (`secrets:`), resolved at provisioning through the same
 * broker path a job's own request takes: a token minted for this job and the broker's audience,
 * the same Cedar decision, the same audit. Every value goes to the masker before any step runs.
 */
export async function resolveDeclaredSecrets(
  deps: ControllerDeps,
  jobId: string,
  names: readonly string[],
  mask: (name: string, value: string) => void,
): Promise<Record<string, string>> {
  if (names.length === 0) return {};
  const identity = deps.identity;
  if (!identity) throw new AirlockError("INTERNAL", "the controller has no identity keys");
  const request = await issueRequestToken(deps.db, jobId, { clock: deps.clock });
  const minted = await issueIdTokenForJob(
    {
      db: deps.db,
      clock: deps.clock,
      keys: identity.keys,
      issuer: identity.issuer,
      lifetimeSeconds: deps.config.identity.tokenLifetimeSeconds,
      claimsFor: (id) => tokenClaimsFor(deps.db, id),
    },
    { requestToken: request.token, audience: brokerAudience(identity.issuer) },
    { via: "provision" },
  );
  const { values } = await resolveJobSecrets(brokerDeps(deps), { jobId, token: minted.token, names });
  const out: Record<string, string> = {};
  for (const [name, value] of values) {
    mask(name, value);
    out[name] = value;
  }
  return out;
}
