export { createBwrapDriver } from "./driver.js";
export type {
  BwrapDriverOptions,
  ExecRequest,
  ExecResult,
  OutputSink,
  ReapReport,
  Sandbox,
  SandboxDriver,
  SandboxLimits,
  SandboxNetwork,
  SandboxSpec,
} from "./types.js";
