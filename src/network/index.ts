export {
  AddressPool,
  DEFAULT_POOL,
  type Lease,
} from "./address-pool.js";
export {
  type DnsDecision,
  type DnsJob,
  type DnsQueryRecord,
  type DnsRcode,
  DnsServer,
  type DnsServerOptions,
  type PassthroughPort,
  type ResolvedAddress,
} from "./dns-server.js";
export {
  type EgressPorts,
  type EgressRequest,
  EgressService,
  type EgressServiceOptions,
  type ProvisionedEgress,
} from "./egress-service.js";
export { netnsEnterArgv, resolvConf } from "./enter.js";
export {
  createJobNetwork,
  ensureBase,
  type Flow,
  type JobNetwork,
  type JobNetworkOptions,
  type ProxyPorts,
} from "./job-network.js";
export { DEFAULT_NAMES, jobNames, shortId } from "./names.js";
export type { L4Proto, NetworkMode, TableNames } from "./nft.js";
export { type NetworkReapReport, reapNetworks } from "./reaper.js";
