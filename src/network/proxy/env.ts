/**
 * The proxy variables for a job's environment. Both spellings are set: curl and wget read only
 * the lower-case ones, most other tools the upper-case ones. Loopback inside the sandbox is the
 * job's own; it never goes through the proxy. Neither do `direct` hosts: Airlock's own endpoints
 * on the job's host-end address (ID tokens, the broker), which the proxy refuses like any host
 * address, so a client that honours HTTP_PROXY (the Actions toolkit, curl) must call them
 * straight. Clients that ignore these are still covered: the network layer redirects TCP 80/443
 * to the transparent listeners.
 */
export function proxyEnv(proxyUrl: string, direct: readonly string[] = []): Record<string, string> {
  const noProxy = ["localhost", "127.0.0.1", "::1", ...direct].join(",");
  return {
    HTTP_PROXY: proxyUrl,
    HTTPS_PROXY: proxyUrl,
    NO_PROXY: noProxy,
    http_proxy: proxyUrl,
    https_proxy: proxyUrl,
    no_proxy: noProxy,
  };
}
