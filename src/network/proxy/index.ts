export {
  type AddressCategory,
  type AddressGuard,
  type AddressGuardOptions,
  createAddressGuard,
  defaultGuardRules,
  type GuardRule,
  type GuardVerdict,
  hardGuardRules,
  softGuardRules,
} from "./address-guard.js";
export {
  addressRule,
  compilePolicy,
  type Decision,
  decide,
  type EgressMode,
  type EgressPolicy,
  EgressPolicyError,
  type EgressPolicyInput,
  type EgressRule,
  type FlowDecision,
  nameAccess,
  normaliseHost,
  parseRule,
  webPorts,
} from "./allowlist.js";
export { proxyEnv } from "./env.js";
export {
  auditedDestinations,
  createFlowMetrics,
  type Flow,
  type FlowMetrics,
  type FlowProtocol,
  type FlowQuery,
  type FlowSink,
  listFlows,
  newFlowId,
  StoreFlowSink,
  type StoreFlowSinkOptions,
  teeSinks,
} from "./flow-log.js";
export {
  defaultLimits,
  EgressProxy,
  type EgressProxyOptions,
  type JobEgress,
  type ListenerRole,
  type ListenOptions,
  type ProxyLimits,
} from "./proxy-server.js";
export { type Destination, registrableDomain, type Suggestion, suggestAllowlist } from "./suggest.js";
export { type Resolver, systemResolver } from "./upstream.js";
