/**
 * Reads the server name from a TLS ClientHello (RFC 8446 §4.1.2, RFC 6066 §3) without
 * terminating TLS. Only what routing needs is parsed; every length is bounds-checked, and a
 * ClientHello split across several records is reassembled up to `maxClientHello` bytes.
 */

export type SniResult =
  | { state: "more" }
  | { state: "done"; serverName: string | undefined }
  | { state: "invalid"; reason: string };

/** A ClientHello with a post-quantum key share is ~1.8 KB; 16 KB leaves room and bounds memory. */
export const maxClientHello = 16 * 1024;

const recordHandshake = 0x16;
const handshakeClientHello = 0x01;
const extServerName = 0x0000;
const nameTypeHost = 0x00;

/** `buf` is everything the client has sent so far. */
export function parseClientHello(buf: Buffer): SniResult {
  // Reassemble the handshake message from consecutive handshake records.
  const parts: Buffer[] = [];
  let have = 0;
  let need = -1;
  let off = 0;
  while (need < 0 || have < need) {
    if (buf.length < off + 5) return { state: "more" };
    if (buf[off] !== recordHandshake) return { state: "invalid", reason: "not a TLS handshake" };
    if (buf[off + 1] !== 0x03) return { state: "invalid", reason: "not TLS" };
    const len = buf.readUInt16BE(off + 3);
    if (len === 0 || len > 16384 + 2048) return { state: "invalid", reason: "bad record length" };
    if (buf.length < off + 5 + len) return { state: "more" };
    parts.push(buf.subarray(off + 5, off + 5 + len));
    have += len;
    off += 5 + len;
    if (need < 0 && have >= 4) {
      const hs = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
      if (hs[0] !== handshakeClientHello) return { state: "invalid", reason: "not a ClientHello" };
      need = 4 + hs.readUIntBE(1, 3);
      if (need > maxClientHello) return { state: "invalid", reason: "ClientHello too large" };
    }
  }
  const hello = Buffer.concat(parts).subarray(4, need);
  return readServerName(hello);
}

function readServerName(b: Buffer): SniResult {
  const bad = (reason: string): SniResult => ({ state: "invalid", reason });
  let p = 2 + 32; // legacy_version, random
  if (b.length < p + 1) return bad("truncated");
  p += 1 + (b[p] as number); // legacy_session_id
  if (b.length < p + 2) return bad("truncated");
  p += 2 + b.readUInt16BE(p); // cipher_suites
  if (b.length < p + 1) return bad("truncated");
  p += 1 + (b[p] as number); // legacy_compression_methods
  if (b.length === p) return { state: "done", serverName: undefined }; // no extensions at all
  if (b.length < p + 2) return bad("truncated");
  const end = p + 2 + b.readUInt16BE(p);
  if (end > b.length) return bad("truncated extensions");
  p += 2;
  while (p + 4 <= end) {
    const type = b.readUInt16BE(p);
    const len = b.readUInt16BE(p + 2);
    p += 4;
    if (p + len > end) return bad("truncated extension");
    if (type === extServerName) return serverNameList(b.subarray(p, p + len));
    p += len;
  }
  return { state: "done", serverName: undefined };
}

function serverNameList(ext: Buffer): SniResult {
  if (ext.length < 2 || ext.readUInt16BE(0) !== ext.length - 2)
    return { state: "invalid", reason: "bad server_name" };
  let p = 2;
  while (p + 3 <= ext.length) {
    const type = ext[p] as number;
    const len = ext.readUInt16BE(p + 1);
    p += 3;
    if (p + len > ext.length) return { state: "invalid", reason: "bad server_name" };
    if (type === nameTypeHost) {
      const name = ext.subarray(p, p + len).toString("latin1");
      // RFC 6066: ASCII, no trailing dot; anything else is not a name we could have allowed.
      if (!/^[\x21-\x7e]{1,253}$/.test(name)) return { state: "invalid", reason: "bad host_name" };
      return { state: "done", serverName: name };
    }
    p += len;
  }
  return { state: "done", serverName: undefined };
}
