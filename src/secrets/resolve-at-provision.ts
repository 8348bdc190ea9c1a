/**
 * Secrets a workflow declares for a job (Airlock's `secrets:` job key) are resolved at
 * provisioning through the very same broker path as a job's own request: the controller mints
 * the job's ID token for the broker's audience and exchanges it here, so the same claims, the
 * same Cedar decision and the same audit apply. The controller then gives each step only the
 * values that step references (pickStepSecrets), and adds every value to the job's masker.
 */
import { AirlockError } from "../errors.js";
import { type BrokerDeps, exchange, type SecretGrant } from "./broker.js";
import { normalizeSecretName } from "./scope.js";

export interface ProvisionSecretsRequest {
  /** The job being provisioned; the token must have been issued to it. */
  jobId: string;
  /** An ID token the controller minted for this job with the broker's audience. */
  token: string;
  /** The names the job declares (`secrets:`), any case. */
  names: readonly string[];
  audience?: string;
}

export interface ResolvedJobSecrets {
  /** Null when the job declares no secrets (nothing is exchanged, nothing is leased). */
  grant: SecretGrant | null;
  /** Upper-case name → value. */
  values: ReadonlyMap<string, string>;
}

/** Resolves a job's declared secrets, all or nothing; throws (after auditing) on any refusal. */
export async function resolveJobSecrets(
  deps: BrokerDeps,
  req: ProvisionSecretsRequest,
): Promise<ResolvedJobSecrets> {
  if (req.names.length === 0) return { grant: null, values: new Map() };
  const grant = await exchange(
    deps,
    {
      token: req.token,
      secrets: req.names,
      ...(req.audience !== undefined ? { audience: req.audience } : {}),
    },
    { via: "provision", expectJobId: req.jobId },
  );
  return { grant, values: new Map(Object.entries(grant.secrets)) };
}

/**
 * The values one step may see: exactly the names it references (e.g. from `${{ secrets.X }}` in
 * its `run`/`env`), each of which must have been resolved for the job. Pure.
 */
export function pickStepSecrets(
  resolved: ReadonlyMap<string, string>,
  referenced: Iterable<string>,
): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of referenced) {
    const name = normalizeSecretName(raw);
    const value = resolved.get(name);
    if (value === undefined) {
      throw new AirlockError(
        "WORKFLOW_INVALID",
        `a step references secret ${name}, which the job does not declare`,
        {
          hint: `add ${name} to the job's secrets: list`,
        },
      );
    }
    out[name] = value;
  }
  return out;
}
