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
  SandboxSpec,
} from "./types.js";
