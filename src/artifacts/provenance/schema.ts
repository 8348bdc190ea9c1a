import { z } from "zod";

/**
 * The published field definitions, as zod schemas: in-toto Statement v1 (statement.md,
 * resource_descriptor.md, digest_set.md, field_types.md) and SLSA Provenance v1
 * (slsa.dev/spec/v1.0/provenance). Unknown fields are kept and ignored, as the in-toto parsing
 * rules require; everything the specs mark required is required here.
 */

export const statementTypeV1 = "https://in-toto.io/Statement/v1";
export const slsaProvenanceV1 = "https://slsa.dev/provenance/v1";

/** RFC 3986 URI: a scheme, a colon, and something after it. */
const uri = z.string().regex(/^[A-Za-z][A-Za-z0-9+.-]*:[^\s]+$/, "must be a URI (RFC 3986)");

/** field_types.md Timestamp: RFC 3339 in UTC ("Z"). */
const timestamp = z.iso.datetime({ offset: false, message: "must be an RFC 3339 timestamp in UTC (…Z)" });

/** Hex lengths of the digest_set.md algorithms with a fixed size; git object ids are SHA-1 or SHA-256. */
const hexLengths: Record<string, readonly number[]> = {
  sha256: [64],
  sha224: [56],
  sha384: [96],
  sha512: [128],
  sha512_224: [56],
  sha512_256: [64],
  sha3_224: [56],
  sha3_256: [64],
  sha3_384: [96],
  sha3_512: [128],
  sha1: [40],
  md5: [32],
  ripemd160: [40],
  sm3: [64],
  dirHash: [64],
  gitCommit: [40, 64],
  gitTree: [40, 64],
  gitBlob: [40, 64],
  gitTag: [40, 64],
};
/** Standard algorithms without a fixed length: still lowercase hex. */
const hexVariable = new Set(["shake128", "shake256", "blake2b", "blake2s", "gost"]);

/** digest_set.md: algorithm → digest; named standard algorithms are lowercase hex. */
export const digestSetSchema = z.record(z.string().min(1), z.string().min(1)).superRefine((set, ctx) => {
  const entries = Object.entries(set);
  if (entries.length === 0)
    ctx.addIssue({ code: "custom", message: "a DigestSet needs at least one digest" });
  for (const [alg, value] of entries) {
    const lengths = hexLengths[alg];
    if (!lengths && !hexVariable.has(alg)) continue;
    if (!/^[0-9a-f]+$/.test(value) || (lengths && !lengths.includes(value.length))) {
      ctx.addIssue({
        code: "custom",
        path: [alg],
        message: `must be lowercase hex${lengths ? ` of ${lengths.join(" or ")} characters` : ""}`,
      });
    }
  }
});

const resourceDescriptorFields = {
  name: z.string().optional(),
  uri: uri.optional(),
  digest: digestSetSchema.optional(),
  /** bytes, base64 in JSON. */
  content: z.base64("must be base64").optional(),
  downloadLocation: uri.optional(),
  mediaType: z.string().optional(),
  annotations: z.record(z.string(), z.unknown()).optional(),
};

/** resource_descriptor.md: every field optional, but one of uri, digest, content is required. */
export const resourceDescriptorSchema = z
  .object(resourceDescriptorFields)
  .loose()
  .refine((rd) => rd.uri !== undefined || rd.digest !== undefined || rd.content !== undefined, {
    message: "a ResourceDescriptor must set at least one of uri, digest or content",
  });

/** statement.md: each subject MUST have a digest. */
export const subjectSchema = z.object({ ...resourceDescriptorFields, digest: digestSetSchema }).loose();

export const statementSchema = z
  .object({
    _type: z.literal(statementTypeV1, { message: `must be "${statementTypeV1}"` }),
    subject: z.array(subjectSchema).min(1, "a Statement needs at least one subject"),
    predicateType: uri,
    predicate: z.record(z.string(), z.unknown()).optional(),
  })
  .loose();

/** slsa.dev/spec/v1.0/provenance: buildDefinition and runDetails, with their required members. */
export const slsaProvenanceSchema = z
  .object({
    buildDefinition: z
      .object({
        buildType: uri,
        externalParameters: z.record(z.string(), z.unknown()),
        internalParameters: z.record(z.string(), z.unknown()).optional(),
        resolvedDependencies: z.array(resourceDescriptorSchema).optional(),
      })
      .loose(),
    runDetails: z
      .object({
        builder: z
          .object({
            id: uri,
            builderDependencies: z.array(resourceDescriptorSchema).optional(),
            version: z.record(z.string(), z.string()).optional(),
          })
          .loose(),
        metadata: z
          .object({
            invocationId: z.string().optional(),
            startedOn: timestamp.optional(),
            finishedOn: timestamp.optional(),
          })
          .loose()
          .optional(),
        byproducts: z.array(resourceDescriptorSchema).optional(),
      })
      .loose(),
  })
  .loose();

export type DigestSet = Record<string, string>;
export type ResourceDescriptor = z.infer<typeof resourceDescriptorSchema>;
export type InTotoStatement = z.infer<typeof statementSchema>;
export type SlsaProvenance = z.infer<typeof slsaProvenanceSchema>;

export type Validation<T> = { ok: true; value: T } | { ok: false; errors: string[] };

export function issues(error: z.ZodError, prefix = ""): string[] {
  return error.issues.map((i) => {
    const path = [prefix, ...i.path.map(String)].filter(Boolean).join(".");
    return path ? `${path}: ${i.message}` : i.message;
  });
}

/**
 * Checks JSON against in-toto Statement v1 and, when its predicateType is SLSA Provenance v1,
 * the predicate against SLSA Provenance v1 (there the predicate is required).
 */
export function validateStatement(json: unknown): Validation<InTotoStatement> {
  const st = statementSchema.safeParse(json);
  if (!st.success) return { ok: false, errors: issues(st.error) };
  if (st.data.predicateType === slsaProvenanceV1) {
    if (st.data.predicate === undefined)
      return { ok: false, errors: ["predicate: required for SLSA provenance"] };
    const pr = slsaProvenanceSchema.safeParse(st.data.predicate);
    if (!pr.success) return { ok: false, errors: issues(pr.error, "predicate") };
  }
  return { ok: true, value: st.data };
}
