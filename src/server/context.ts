import type {
  FastifyBaseLogger,
  FastifyInstance,
  RawReplyDefaultExpression,
  RawRequestDefaultExpression,
  RawServerDefault,
} from "fastify";
import type { ZodTypeProvider } from "fastify-type-provider-zod";
import { z } from "zod";
import type { Permission, Principal } from "../auth/index.js";
import type { Clock } from "../clock.js";
import type { Controller } from "../controller/controller.js";
import { AirlockError } from "../errors.js";

/** Every route names what it needs: a permission, or "public" for the few that need none. */
export type RouteAccess = Permission | "public";

declare module "fastify" {
  interface FastifyContextConfig {
    access?: RouteAccess;
    /**
     * The body carries secret material (a secret's value): validation errors name where the
     * body is wrong, never what it holds, not even an unknown key (a value pasted as a key).
     */
    sensitiveBody?: boolean;
  }
  interface FastifyRequest {
    principal: Principal | null;
  }
}

export type App = FastifyInstance<
  RawServerDefault,
  RawRequestDefaultExpression,
  RawReplyDefaultExpression,
  FastifyBaseLogger,
  ZodTypeProvider
>;

/** What the route modules work with. */
export interface ServerContext {
  controller: Controller;
  clock: Clock;
  /** Aborted when the server starts closing, so long-lived streams end and close() can finish. */
  shutdown: AbortSignal;
}

/** The authenticated caller. The auth hook guarantees it on every non-public route. */
export function principalOf(req: { principal: Principal | null }): Principal {
  if (!req.principal) throw new AirlockError("INTERNAL", "route reached without an authenticated principal");
  return req.principal;
}

// Ids in paths are checked for shape, so a garbage id is a 400 and never reaches a query or a message.
const idParam = (prefix: string) =>
  z.string().regex(new RegExp(`^${prefix}_[a-z2-7]{16}$`), `must be a ${prefix}_… id`);

export const runIdParams = z.strictObject({ id: idParam("run") });
export const jobIdParams = z.strictObject({ id: idParam("job") });
export const tokenIdParams = z.strictObject({ id: idParam("tok") });
