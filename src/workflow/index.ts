/** The workflow domain's public API: parse a file into a plan, order its jobs, evaluate expressions. */
export * from "./expressions/index.js";
export {
  ancestors,
  dependants,
  directDependants,
  findCycles,
  type JobResult,
  jobOrder,
  upstreamStatus,
} from "./graph.js";
export {
  builtinActions,
  defaultPermissions,
  egressPattern,
  maxWorkflowBytes,
  parseWorkflow,
} from "./parse.js";
export * from "./types.js";
