export { type AuthorizeRequest, authorize, parseBearer } from "./guard.js";
export { type AuthDeps, demand, forbiddenMessage, type Principal, type RequestContext } from "./principal.js";
export { can, isRole, type Permission, permissions, permissionTable, type Role, roles } from "./roles.js";
export {
  type AuthFailureReason,
  authenticate,
  checkToken,
  defaultTokenTtlSeconds,
  hashToken,
  type IssuedToken,
  type IssueTokenInput,
  issueToken,
  isTokenShaped,
  listTokens,
  maxTokenTtlSeconds,
  revokeToken,
  type TokenCheck,
  type TokenInfo,
  tokenPrefix,
  unauthenticatedMessage,
} from "./tokens.js";
export {
  type CreateUserInput,
  createUser,
  createUserInput,
  disableUser,
  ensureLocalAdmin,
  listUsers,
  localAdminName,
  type UserInfo,
  userNamePattern,
} from "./users.js";
