import type { Clock } from "../clock.js";
import type { Db } from "../store/database.js";
import { demand, type Principal } from "./principal.js";
import type { Permission } from "./roles.js";
import { auditUnauthenticated, authenticate, unauthenticatedError } from "./tokens.js";

export interface AuthorizeRequest {
  /**
   * The raw Authorization header, exactly as received (undefined when absent), or every one of
   * them when the transport can tell: more than one is refused, never resolved by picking one.
   */
  authorizationHeader: string | readonly string[] | undefined;
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
  headers: string | readonly string[] | undefined,
): { ok: true; token: string } | { ok: false; reason: "missing" | "duplicate" | "scheme" | "malformed" } {
  // Two Authorization headers are two claims to be someone; which one a proxy in front of us, or a
  // log, or Node (it keeps the first) took as "the" header differs, so neither is believed.
  if (Array.isArray(headers) && headers.length > 1) return { ok: false, reason: "duplicate" };
  const header: string | undefined = typeof headers === "string" ? headers : headers?.[0];
  if (header === undefined || header.trim() === "") return { ok: false, reason: "missing" };
  const match = /^(\S+)(?:\s+(.*))?$/s.exec(header.trim());
  if (match?.[1]?.toLowerCase() !== "bearer") return { ok: false, reason: "scheme" };
  const token = match[2]?.trim() ?? "";
  // Token shape (prefix, length, alphabet) is checked by authenticate; here only "one credential".
  if (token === "" || /\s/.test(token)) return { ok: false, reason: "malformed" };
  return { ok: true, token };
}
