import canonicalize from "canonicalize";
import { z } from "zod";
import { type DsseEnvelope, inTotoPayloadType, signEnvelope } from "./dsse.js";
import type { ActiveProvenanceKey } from "./keys.js";
import { type InTotoStatement, issues, type Validation } from "./schema.js";

/**
 * Sigstore bundle v0.3 (protobuf-specs sigstore_bundle.proto, JSON form) with public-key
 * verification material: no certificate, no transparency-log entry, no timestamp. That is the form
 * @sigstore/verify and `cosign verify-blob-attestation --key … --insecure-ignore-tlog` accept.
 */
export const bundleMediaTypeV03 = "application/vnd.dev.sigstore.bundle.v0.3+json";
/** The older spelling of the same version, accepted on input. */
const bundleMediaTypeV03Legacy = "application/vnd.dev.sigstore.bundle+json;version=0.3";

export interface SigstoreBundle {
  mediaType: string;
  verificationMaterial: {
    publicKey: { hint: string };
    tlogEntries: unknown[];
    timestampVerificationData?: { rfc3161Timestamps: unknown[] };
  };
  dsseEnvelope: DsseEnvelope;
}

export function toBundle(envelope: DsseEnvelope, hint: string): SigstoreBundle {
  return {
    mediaType: bundleMediaTypeV03,
    verificationMaterial: {
      publicKey: { hint },
      tlogEntries: [],
      timestampVerificationData: { rfc3161Timestamps: [] },
    },
    dsseEnvelope: envelope,
  };
}

/** The statement's signed bytes: canonical JSON (RFC 8785), so equal statements sign equal payloads. */
export function statementPayload(statement: InTotoStatement): Buffer {
  return Buffer.from(canonicalize(statement) ?? "", "utf8");
}

/** Signs a statement with the active key; the result is ready to write out as JSON. */
export function signStatement(statement: InTotoStatement, key: ActiveProvenanceKey): SigstoreBundle {
  const envelope = signEnvelope(statementPayload(statement), inTotoPayloadType, key);
  return toBundle(envelope, key.keyid);
}

const bundleSchema = z.object({
  mediaType: z.union([z.literal(bundleMediaTypeV03), z.literal(bundleMediaTypeV03Legacy)], {
    message: `must be "${bundleMediaTypeV03}" (Sigstore bundle v0.3)`,
  }),
  verificationMaterial: z
    .object({
      publicKey: z.object({ hint: z.string().min(1, "must name the signing key") }),
      tlogEntries: z.array(z.unknown()).optional(),
      timestampVerificationData: z.unknown().optional(),
    })
    .loose(),
  dsseEnvelope: z.object({
    payload: z.string().min(1),
    payloadType: z.string().min(1),
    signatures: z
      .array(z.object({ sig: z.string().min(1), keyid: z.string().optional() }).loose())
      .length(1, "a bundle's DSSE envelope carries exactly one signature"),
  }),
});

/** Reads a bundle from JSON text or a parsed value; only the public-key, DSSE form is accepted. */
export function parseBundle(input: unknown): Validation<SigstoreBundle> {
  let value = input;
  if (typeof input === "string" || Buffer.isBuffer(input)) {
    try {
      value = JSON.parse(input.toString());
    } catch {
      return { ok: false, errors: ["the bundle is not JSON"] };
    }
  }
  const parsed = bundleSchema.safeParse(value);
  if (!parsed.success) return { ok: false, errors: issues(parsed.error) };
  const b = parsed.data;
  return {
    ok: true,
    value: {
      mediaType: b.mediaType,
      verificationMaterial: {
        publicKey: { hint: b.verificationMaterial.publicKey.hint },
        tlogEntries: b.verificationMaterial.tlogEntries ?? [],
      },
      dsseEnvelope: {
        payload: b.dsseEnvelope.payload,
        payloadType: b.dsseEnvelope.payloadType,
        signatures: b.dsseEnvelope.signatures.map((s) => ({ sig: s.sig, keyid: s.keyid ?? "" })),
      },
    },
  };
}
