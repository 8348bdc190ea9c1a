import type { Clock } from "../clock.js";
import type { Db } from "../store/database.js";
import { demand, type Principal } from "./principal.js";
import type { Permission } from "./roles.js";
import { auditUnauthenticated, authenticate, unauthenticatedError } from "./tokens.js";

export interface AuthorizeRequest {
  /** The raw Authorization header, exactly as received (undefined when absent). */
  authorizationHeader: string | undefined;
  permission: Permission;
  route: string;
  method: string;
  ip: string;
}

/**
 * The single gate every API route passes through, kept free of any HTTP framework so the server,
 * tests and any future transport share it. Returns the principal the route must use as its actor
 * (a request body never names the actor). Throws UNAUTHENTICATED (401) or FORBIDDEN (403), having
 * written exactly one audit record for the refusal.
 */
export async function authorize(db: Db, req: AuthorizeRequest, clock: Clock): Promise<Principal> {
  const context = { route: req.route, method: req.method, ip: req.ip };
  const parsed = parseBearer(req.authorizationHeader);
  if (!parsed.ok) {
    await auditUnauthenticated(db, { reason: parsed.reason }, context, clock);
    throw unauthenticatedError();
  }
  const { user, tokenId } = await authenticate(db, parsed.token, clock, context);
  const principal: Principal = { userId: user.id, userName: user.name, role: user.role, tokenId };
  await demand(db, principal, req.permission, context, clock);
  return principal;
}

/**
 * Splits "Bearer <token>". The scheme is matched case-insensitively (RFC 9110 §11.1). Nothing from
 * the header is echoed back or recorded: a caller who sends a bare token with no scheme would
 * otherwise see it reflected as the "scheme".
 */
export function parseBearer(
  header: string | undefined,
): { ok: true; token: string } | { ok: false; reason: "missing" | "scheme" | "malformed" } {
  if (header === undefined || header.trim() === "") return { ok: false, reason: "missing" };
  const match = /^(\S+)(?:\s+(.*))?$/s.exec(header.trim());
  if (match?.[1]?.toLowerCase() !== "bearer") return { ok: false, reason: "scheme" };
  const token = match[2]?.trim() ?? "";
  // Token shape (prefix, length, alphabet) is checked by authenticate; here only "one credential".
  if (token === "" || /\s/.test(token)) return { ok: false, reason: "malformed" };
  return { ok: true, token };
}
