import { createHash } from "node:crypto";
import canonicalize from "canonicalize";
import { z } from "zod";
import { AirlockError } from "../../errors.js";
import type { Digest } from "../store.js";
import {
  type InTotoStatement,
  issues,
  type ResourceDescriptor,
  slsaProvenanceV1,
  statementTypeV1,
  type Validation,
  validateStatement,
} from "./schema.js";

/** Airlock's build type: what externalParameters and internalParameters mean (see README.md). */
export const airlockBuildType = "https://airlock.dev/buildtypes/workflow/v1";
/** Builder ids are `https://airlock.dev/builder/<instance>` unless configured otherwise. */
export const builderIdBase = "https://airlock.dev/builder/";

export function builderIdFor(instance: string): string {
  if (!/^[A-Za-z0-9._-]+$/.test(instance)) {
    throw new AirlockError("CONFIG_INVALID", `builder instance "${instance}" must be [A-Za-z0-9._-]+`);
  }
  return `${builderIdBase}${instance}`;
}

/** What the egress proxy saw for the job, summarised (the flow log itself stays in the store). */
export interface EgressSummary {
  /** enforce | audit | block, as configured for the job. */
  mode: string;
  flows: number;
  allowed: number;
  denied: number;
  bytesUp: number;
  bytesDown: number;
  /** One line per destination, sorted by host then port. */
  destinations: { host: string; port: number; decision: string; flows: number }[];
}

export interface PolicyDecisionSummary {
  /** The Cedar action, e.g. RunJob or GetSecret. */
  action: string;
  decision: "allow" | "deny";
  /** Policy ids that decided. */
  policies: string[];
  /** What was asked for, when not the job itself (e.g. a secret's name, never its value). */
  resource?: string;
}

/** Everything the controller knows after a job that provenance records. Typed here, parsed nowhere: it comes from our own store. */
export interface ProvenanceInput {
  builderId: string;
  /** The job's artifacts: name and digest of each. */
  subjects: { name: string; digest: Digest }[];
  /** Repository URI, e.g. https://git.example/acme/web or file:///srv/git/web. */
  repository: string;
  /** Full ref, e.g. refs/heads/main. */
  ref: string;
  refType: "branch" | "tag" | "other";
  refProtected: boolean;
  /** The commit that was checked out. */
  sha: string;
  workflow: { path: string; name: string };
  event: string;
  inputs: Record<string, string | number | boolean>;
  actor: string;
  environment: string | null;
  run: { id: string; number: number; attempt: number };
  job: { id: string; key: string };
  runnerId: string;
  startedOn: Date | string;
  finishedOn: Date | string;
  egress: EgressSummary;
  policyDecisions: PolicyDecisionSummary[];
  /** Builder version map, e.g. { airlock: "0.1.0" }. */
  builderVersion?: Record<string, string>;
}

/** internalParameters of Airlock's build type: facts the controller vouches for, checked by verify. */
export const airlockInternalSchema = z
  .object({
    runId: z.string().min(1),
    runNumber: z.number().int(),
    runAttempt: z.number().int(),
    jobId: z.string().min(1),
    jobKey: z.string().min(1),
    runnerId: z.string().min(1),
    actor: z.string(),
    eventName: z.string(),
    refType: z.enum(["branch", "tag", "other"]),
    refProtected: z.boolean(),
    environment: z.string().nullable(),
  })
  .loose();

export const airlockExternalSchema = z
  .object({
    workflow: z
      .object({ path: z.string().min(1), ref: z.string().min(1), repository: z.string().min(1) })
      .loose(),
    inputs: z.record(z.string(), z.unknown()),
  })
  .loose();

export type AirlockInternalParameters = z.infer<typeof airlockInternalSchema>;
export type AirlockExternalParameters = z.infer<typeof airlockExternalSchema>;

export interface AirlockProvenance {
  statement: InTotoStatement;
  builderId: string;
  external: AirlockExternalParameters;
  internal: AirlockInternalParameters;
  /** sha256 hex → subject names with that digest. */
  subjects: { name: string; sha256: string }[];
}

export const egressByproductName = "egress-flows";
export const policyByproductName = "policy-decisions";
const jsonMediaType = "application/json";

const iso = (t: Date | string) => (typeof t === "string" ? new Date(t) : t).toISOString();

/** A small JSON document carried inline (base64 content, with its sha256 so it can be referenced). */
function inlineJson(name: string, value: unknown): ResourceDescriptor {
  const bytes = Buffer.from(canonicalize(value) ?? "null", "utf8");
  return {
    name,
    mediaType: jsonMediaType,
    digest: { sha256: createHash("sha256").update(bytes).digest("hex") },
    content: bytes.toString("base64"),
  };
}

function hexOf(digest: Digest): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (!m) throw new AirlockError("ARTIFACT_INVALID", `subject digest "${digest}" is not sha256:<64 hex>`);
  return m[1] as string;
}

/**
 * The in-toto Statement v1 with a SLSA Provenance v1 predicate for one job. Pure and
 * deterministic: the same input gives the same statement (subjects sorted by name, byproducts as
 * canonical JSON), which is what the golden fixture checks.
 */
export function buildStatement(input: ProvenanceInput): InTotoStatement {
  if (input.subjects.length === 0) {
    throw new AirlockError("ARTIFACT_INVALID", "provenance needs at least one artifact to describe");
  }
  const names = new Set<string>();
  for (const s of input.subjects) {
    if (names.has(s.name)) throw new AirlockError("ARTIFACT_INVALID", `two artifacts are named "${s.name}"`);
    names.add(s.name);
  }
  const subject = [...input.subjects]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((s) => ({ name: s.name, digest: { sha256: hexOf(s.digest) } }));
  const external: AirlockExternalParameters = {
    workflow: { path: input.workflow.path, ref: input.ref, repository: input.repository },
    inputs: input.inputs,
  };
  const internal: AirlockInternalParameters = {
    runId: input.run.id,
    runNumber: input.run.number,
    runAttempt: input.run.attempt,
    jobId: input.job.id,
    jobKey: input.job.key,
    runnerId: input.runnerId,
    actor: input.actor,
    eventName: input.event,
    refType: input.refType,
    refProtected: input.refProtected,
    environment: input.environment,
  };
  const statement: InTotoStatement = {
    _type: statementTypeV1,
    subject,
    predicateType: slsaProvenanceV1,
    predicate: {
      buildDefinition: {
        buildType: airlockBuildType,
        externalParameters: { ...external, workflow: { ...external.workflow, name: input.workflow.name } },
        internalParameters: internal,
        resolvedDependencies: [
          { uri: `git+${input.repository}@${input.ref}`, digest: { gitCommit: input.sha } },
        ],
      },
      runDetails: {
        builder: {
          id: input.builderId,
          ...(input.builderVersion ? { version: input.builderVersion } : {}),
        },
        metadata: {
          invocationId: `${input.run.id}/${input.job.id}/${input.run.attempt}`,
          startedOn: iso(input.startedOn),
          finishedOn: iso(input.finishedOn),
        },
        byproducts: [
          inlineJson(egressByproductName, {
            ...input.egress,
            destinations: [...input.egress.destinations].sort((a, b) =>
              a.host === b.host ? a.port - b.port : a.host < b.host ? -1 : 1,
            ),
          }),
          inlineJson(policyByproductName, input.policyDecisions),
        ],
      },
    },
  };
  // Never sign something a verifier would refuse.
  const checked = readAirlockProvenance(statement);
  if (!checked.ok) {
    throw new AirlockError("ARTIFACT_INVALID", `provenance does not validate: ${checked.errors.join("; ")}`);
  }
  return statement;
}

/** Validates against in-toto/SLSA v1, then reads Airlock's build type out of it. */
export function readAirlockProvenance(json: unknown): Validation<AirlockProvenance> {
  const v = validateStatement(json);
  if (!v.ok) return v;
  const statement = v.value;
  if (statement.predicateType !== slsaProvenanceV1) {
    return {
      ok: false,
      errors: [`predicateType: is ${statement.predicateType}, expected ${slsaProvenanceV1}`],
    };
  }
  // validateStatement checked the predicate's shape; these reads are now safe.
  const predicate = statement.predicate as {
    buildDefinition: { buildType: string; externalParameters: unknown; internalParameters?: unknown };
    runDetails: { builder: { id: string } };
  };
  const def = predicate.buildDefinition;
  if (def.buildType !== airlockBuildType) {
    return {
      ok: false,
      errors: [`predicate.buildDefinition.buildType: is ${def.buildType}, expected ${airlockBuildType}`],
    };
  }
  const ext = airlockExternalSchema.safeParse(def.externalParameters);
  if (!ext.success)
    return { ok: false, errors: issues(ext.error, "predicate.buildDefinition.externalParameters") };
  const int = airlockInternalSchema.safeParse(def.internalParameters);
  if (!int.success)
    return { ok: false, errors: issues(int.error, "predicate.buildDefinition.internalParameters") };
  const subjects: AirlockProvenance["subjects"] = [];
  for (const s of statement.subject) {
    if (s.digest.sha256) subjects.push({ name: s.name ?? "_", sha256: s.digest.sha256 });
  }
  if (subjects.length === 0) return { ok: false, errors: ["subject: no subject has a sha256 digest"] };
  return {
    ok: true,
    value: {
      statement,
      builderId: predicate.runDetails.builder.id,
      external: ext.data,
      internal: int.data,
      subjects,
    },
  };
}

/** Decodes an inline JSON byproduct (egress-flows, policy-decisions) of a statement, if present. */
export function readByproduct(statement: InTotoStatement, name: string): unknown {
  const byproducts = (
    statement.predicate as { runDetails?: { byproducts?: ResourceDescriptor[] } } | undefined
  )?.runDetails?.byproducts;
  const found = byproducts?.find((b) => b.name === name);
  if (!found?.content) return undefined;
  return JSON.parse(Buffer.from(found.content, "base64").toString("utf8"));
}
