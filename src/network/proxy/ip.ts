import { isIP } from "node:net";

/** An address as bytes: 4 for IPv4, 16 for IPv6. IPv4-mapped IPv6 is unwrapped to IPv4. */
export interface IpAddress {
  family: 4 | 6;
  bytes: Uint8Array;
}

export interface Cidr {
  family: 4 | 6;
  bytes: Uint8Array;
  prefix: number;
  /** As written, normalised (`10.0.0.0/8`, `2001:db8::/32`). */
  text: string;
}

function parseV4(s: string): Uint8Array | undefined {
  const parts = s.split(".");
  if (parts.length !== 4) return undefined;
  const out = new Uint8Array(4);
  for (let i = 0; i < 4; i++) {
    const p = parts[i] as string;
    if (!/^\d{1,3}$/.test(p)) return undefined;
    const n = Number(p);
    if (n > 255) return undefined;
    out[i] = n;
  }
  return out;
}

function parseV6(s: string): Uint8Array | undefined {
  // Zone ids (fe80::1%eth0) name an interface on this host: never a destination for a job.
  if (s.includes("%")) return undefined;
  let tail: Uint8Array | undefined;
  let text = s;
  const lastColon = s.lastIndexOf(":");
  if (s.includes(".", lastColon)) {
    tail = parseV4(s.slice(lastColon + 1));
    if (!tail) return undefined;
    text = `${s.slice(0, lastColon + 1)}0:0`;
  }
  const halves = text.split("::");
  if (halves.length > 2) return undefined;
  const group = (h: string): number[] | undefined => {
    if (h === "") return [];
    const out: number[] = [];
    for (const g of h.split(":")) {
      if (!/^[0-9a-f]{1,4}$/i.test(g)) return undefined;
      out.push(Number.parseInt(g, 16));
    }
    return out;
  };
  const head = group(halves[0] as string);
  const rest = halves.length === 2 ? group(halves[1] as string) : [];
  if (!head || !rest) return undefined;
  const missing = 8 - head.length - rest.length;
  if (halves.length === 2 ? missing < 1 : missing !== 0) return undefined;
  const words = [...head, ...new Array<number>(missing).fill(0), ...rest];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[i * 2] = w >> 8;
    out[i * 2 + 1] = w & 0xff;
  });
  if (tail) out.set(tail, 12);
  return out;
}

/**
 * Parses an IP literal (IPv6 with or without brackets). An IPv4-mapped IPv6 address
 * (`::ffff:127.0.0.1`) comes back as the IPv4 address it is, so a check written for IPv4 ranges
 * cannot be sidestepped by spelling the address as IPv6.
 */
export function parseIp(input: string): IpAddress | undefined {
  const s = input.startsWith("[") && input.endsWith("]") ? input.slice(1, -1) : input;
  if (isIP(s) === 4) {
    const b = parseV4(s);
    return b ? { family: 4, bytes: b } : undefined;
  }
  if (!s.includes(":")) return undefined;
  const b = parseV6(s);
  if (!b) return undefined;
  if (b.subarray(0, 10).every((x) => x === 0) && b[10] === 0xff && b[11] === 0xff) {
    return { family: 4, bytes: b.slice(12) };
  }
  return { family: 6, bytes: b };
}

export function isIpLiteral(input: string): boolean {
  return parseIp(input) !== undefined;
}

export function formatIp(ip: IpAddress): string {
  if (ip.family === 4) return Array.from(ip.bytes).join(".");
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2)
    words.push((((ip.bytes[i] as number) << 8) | (ip.bytes[i + 1] as number)).toString(16));
  // Compress the longest run of zero words, as RFC 5952 asks.
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (words[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return words.join(":");
  return `${words.slice(0, best).join(":")}::${words.slice(best + bestLen).join(":")}`;
}

/** `10.0.0.0/8`, `2001:db8::/32`, or a bare address (a /32 or /128). */
export function parseCidr(input: string): Cidr | undefined {
  const slash = input.indexOf("/");
  const addr = parseIp(slash < 0 ? input : input.slice(0, slash));
  if (!addr) return undefined;
  const max = addr.family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = input.slice(slash + 1);
    if (!/^\d{1,3}$/.test(p)) return undefined;
    prefix = Number(p);
    // A mapped IPv6 CIDR (::ffff:10.0.0.0/104) becomes the IPv4 CIDR it covers.
    if (addr.family === 4 && input.includes(":")) prefix -= 96;
    if (prefix < 0 || prefix > max) return undefined;
  }
  const bytes = addr.bytes.slice();
  // Zero the host bits so the text shows the network the rule really covers.
  for (let bit = prefix; bit < max; bit++)
    bytes[bit >> 3] = (bytes[bit >> 3] as number) & ~(0x80 >> (bit & 7));
  return {
    family: addr.family,
    bytes,
    prefix,
    text: `${formatIp({ family: addr.family, bytes })}/${prefix}`,
  };
}

export function cidrContains(cidr: Cidr, ip: IpAddress): boolean {
  if (cidr.family !== ip.family) return false;
  const full = cidr.prefix >> 3;
  for (let i = 0; i < full; i++) if (cidr.bytes[i] !== ip.bytes[i]) return false;
  const rem = cidr.prefix & 7;
  if (rem === 0) return true;
  const mask = (0xff << (8 - rem)) & 0xff;
  return ((cidr.bytes[full] as number) & mask) === ((ip.bytes[full] as number) & mask);
}
