/**
 * What the server repeats back (a problem's `instance`, a 404's detail) or writes to its log (the
 * request line) comes from the caller's URL, and a caller may put a token there by mistake
 * (`?access_token=alk_…`, a token pasted as a path segment). Tokens are only ever accepted from the
 * Authorization header, so a URL never needs one: it is scrubbed before it is echoed or logged.
 */

// Airlock API tokens, and the other bearer credentials a job or a person might paste: JWTs (ID
// tokens), GitHub and npm tokens. Matched anywhere, in raw and percent-encoded URLs alike.
const credentialPatterns: readonly RegExp[] = [
  /alk_[A-Za-z0-9_-]{8,}/g,
  /eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*)?/g,
  /gh[pousr]_[A-Za-z0-9]{20,}/g,
  /npm_[A-Za-z0-9]{20,}/g,
];
// Query parameters whose values are credentials by name, whatever they look like.
const sensitiveParam = /token|auth|key|secret|passw|credential|session|signature|sig$/i;
// A 64-hex-digit run is what a stored token hash looks like (and a sha256 digest, which is harmless
// but cannot be told apart); it is kept in paths, where digests name artifacts, and cut in queries.
const longHex = /\b[0-9a-f]{64}\b/gi;

export const redacted = "[redacted]";
const maxEchoedPath = 512;

export function scrubText(text: string): string {
  let out = text;
  for (const p of credentialPatterns) out = out.replace(p, redacted);
  return out;
}

/** The URL with credentials cut out of its path and query. Never throws. */
export function scrubUrl(url: string): string {
  const q = url.indexOf("?");
  const path = scrubText(q === -1 ? url : url.slice(0, q));
  if (q === -1) return path;
  const query = url
    .slice(q + 1)
    .split("&")
    .map((pair) => {
      const eq = pair.indexOf("=");
      if (eq === -1) return scrubText(pair).replace(longHex, redacted);
      const key = pair.slice(0, eq);
      let name = key;
      try {
        name = decodeURIComponent(key);
      } catch {
        // a malformed escape: judge the raw key
      }
      if (sensitiveParam.test(name)) return `${scrubText(key)}=${redacted}`;
      return `${scrubText(key)}=${scrubText(pair.slice(eq + 1)).replace(longHex, redacted)}`;
    })
    .join("&");
  return `${path}?${query}`;
}

/** The path alone, scrubbed: what a problem document names as its `instance`. */
export function scrubbedPath(url: string): string {
  let path = url;
  const q = path.indexOf("?");
  if (q !== -1) path = path.slice(0, q);
  // An absolute-form request target (`GET http://host/path`) names the resource by its path too.
  const abs = /^[a-z][a-z0-9+.-]*:\/\/[^/]*/i.exec(path);
  if (abs) path = path.slice(abs[0].length) || "/";
  path = scrubText(path);
  // A problem names its resource; it need not repeat a 100 kB path back to whoever sent it.
  return path.length > maxEchoedPath ? `${path.slice(0, maxEchoedPath)}…` : path;
}
