/**
 * The proxy variables for a job's environment. Both spellings are set: curl and wget read only
 * the lower-case ones, most other tools the upper-case ones. Loopback inside the sandbox is the
 * job's own; it never goes through the proxy. Clients that ignore these are still covered: the
 * network layer redirects TCP 80/443 to the transparent listeners.
 */
export function proxyEnv(proxyUrl: string): Record<string, string> {
  const noProxy = "localhost,127.0.0.1,::1";
  return {
    HTTP_PROXY: proxyUrl,
    HTTPS_PROXY: proxyUrl,
    NO_PROXY: noProxy,
    http_proxy: proxyUrl,
    https_proxy: proxyUrl,
    no_proxy: noProxy,
  };
}
