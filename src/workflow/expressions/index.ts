export {
  type Ast,
  type ComparisonOp,
  type ContextName,
  type ContextRef,
  contextNames,
  contextRefs,
  type FunctionName,
  functions,
  isStatusFunction,
  type StatusFunctionName,
  statusFunctions,
  usesStatusFunction,
  walk,
} from "./ast.js";
export { type ExecutionStatus, type ExpressionContext, evaluate, format } from "./evaluate.js";
export { maxAstDepth, maxExpressionDepth, maxExpressionLength, parseExpression } from "./parser.js";
export {
  type ConditionOptions,
  conditionSource,
  evaluateCondition,
  interpolate,
  parseCondition,
  splitTemplate,
  type TemplatePart,
} from "./template.js";
export { kindOf, looseEquals, toBoolean, toNumber, toStr } from "./values.js";
