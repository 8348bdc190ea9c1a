import { type KeyObject, sign, verify } from "node:crypto";

/**
 * DSSE v1 (github.com/secure-systems-lab/dsse, protocol.md). Signatures are ECDSA P-256 over
 * SHA-256 of the PAE, DER-encoded: the encoding Sigstore bundles carry and that @sigstore/verify,
 * sigstore-go and cosign check (node:crypto's default for EC keys).
 */

export const inTotoPayloadType = "application/vnd.in-toto+json";

export interface DsseSignature {
  /** base64 (standard alphabet) of the DER signature. */
  sig: string;
  /** The signing key's hint (sha256 hex of its SPKI DER); informational, never trusted. */
  keyid: string;
}

export interface DsseEnvelope {
  /** base64 (standard alphabet) of the payload bytes. */
  payload: string;
  payloadType: string;
  signatures: DsseSignature[];
}

/** Pre-authentication encoding: "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in ASCII decimal bytes. */
export function pae(payloadType: string, payload: Uint8Array): Buffer {
  const type = Buffer.from(payloadType, "utf8");
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${type.length} `, "ascii"),
    type,
    Buffer.from(` ${payload.length} `, "ascii"),
    payload,
  ]);
}

export function signEnvelope(
  payload: Uint8Array,
  payloadType: string,
  key: { keyid: string; privateKey: KeyObject },
): DsseEnvelope {
  const sig = sign("sha256", pae(payloadType, payload), { key: key.privateKey, dsaEncoding: "der" });
  return {
    payload: Buffer.from(payload).toString("base64"),
    payloadType,
    signatures: [{ sig: sig.toString("base64"), keyid: key.keyid }],
  };
}

/** Strict base64 (standard alphabet, padded), so a re-encoded payload cannot pass as the signed one. */
export function decodeBase64(text: string): Buffer | undefined {
  if (!/^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(text)) return undefined;
  return Buffer.from(text, "base64");
}

/** True when `sig` (base64 DER) is a valid signature by publicKey over PAE(payloadType, payload). */
export function verifyEnvelopeSignature(
  payload: Uint8Array,
  payloadType: string,
  sig: string,
  publicKey: KeyObject,
): boolean {
  const der = decodeBase64(sig);
  if (!der || der.length === 0) return false;
  try {
    return verify("sha256", pae(payloadType, payload), { key: publicKey, dsaEncoding: "der" }, der);
  } catch {
    return false;
  }
}
