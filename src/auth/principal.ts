import { recordAudit } from "../audit/log.js";
import { type Clock, systemClock } from "../clock.js";
import { AirlockError } from "../errors.js";
import type { Db } from "../store/database.js";
import { can, type Permission, type Role } from "./roles.js";

/** Who is acting: always derived from authentication (or the embedded CLI), never from a request body. */
export interface Principal {
  userId: string;
  userName: string;
  role: Role;
  /** The API token that authenticated the call; null for the embedded CLI's local admin. */
  tokenId: string | null;
}

/** Where a refused call came from; recorded in the audit event so a refusal can be traced. */
export interface RequestContext {
  route?: string;
  method?: string;
  ip?: string;
}

export interface AuthDeps {
  clock?: Clock;
  /** The random source for token secrets and ids, injectable so tests are deterministic. */
  random?: (n: number) => Buffer;
}

export function forbiddenMessage(role: Role, permission: Permission): string {
  return `role ${role} may not ${permission}`;
}

/**
 * Throws FORBIDDEN (and records `auth.forbidden` in a transaction of its own, since the refused
 * change never happens) unless the principal's role grants the permission.
 */
export async function demand(
  db: Db,
  principal: Principal,
  permission: Permission,
  context: RequestContext & { action?: string },
  clock: Clock = systemClock,
): Promise<void> {
  if (can(principal.role, permission)) return;
  const reason = forbiddenMessage(principal.role, permission);
  await recordAudit(
    db,
    {
      type: "auth.forbidden",
      actor: principal.userId,
      // Who asked, by id and name, and with which token (its id: never the secret or its hash).
      data: {
        ...context,
        permission,
        role: principal.role,
        reason,
        user: principal.userName,
        tokenId: principal.tokenId,
      },
    },
    clock,
  );
  throw new AirlockError("FORBIDDEN", reason, {
    hint: "ask an admin for a role that grants this permission",
    details: { permission },
  });
}
