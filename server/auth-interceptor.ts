/**
 * The API key check, as a Connect interceptor: every RPC needs a key
 * (`Authorization: Bearer <secret>`, the same header as gRPC metadata)
 * holding the role its method declares in the contract
 * (server/required-role.ts). No key, or one that is unknown, revoked or
 * expired: UNAUTHENTICATED, without saying which (that would help someone
 * guessing). A key without the role: PERMISSION_DENIED naming the role it
 * lacks. The key is left in the call's context values for the handlers.
 */
import { Code, ConnectError, createContextKey, type Interceptor } from "@connectrpc/connect";
import type { ApiKey } from "../queue/api-keys.js";
import type { KeyCache } from "./key-cache.js";
import { isPublic, requiredRole, roleFromName, roleGrants, roleName } from "./required-role.js";

/** The key a call was made with (undefined when the server does not require keys). */
export const CALLER_KEY = createContextKey<ApiKey | undefined>(undefined, { description: "the caller's API key" });

const BEARER = /^Bearer +([!-~]+) *$/i;

export function createAuthInterceptor(cache: KeyCache): Interceptor {
  return (next) => async (req) => {
    if (isPublic(req.method)) return next(req);
    const needed = requiredRole(req.method);
    const header = req.header.get("authorization");
    if (header === null || header === "") {
      throw new ConnectError(
        "this server requires an API key: send it as the header Authorization: Bearer <secret> " +
          "(an operator creates one with stepq keys create)",
        Code.Unauthenticated,
      );
    }
    const m = BEARER.exec(header);
    if (!m) throw new ConnectError("the Authorization header must be Bearer <secret>", Code.Unauthenticated);
    const key = await cache.get(m[1] as string);
    if (!key) throw new ConnectError("this API key is not valid here (unknown, revoked or expired)", Code.Unauthenticated);
    const held = key.roles.map(roleFromName).filter((r) => r !== undefined);
    if (!roleGrants(held, needed)) {
      throw new ConnectError(
        `API key ${key.id} ("${key.name}") has the roles ${key.roles.join(", ")}; ` +
          `${req.service.name}.${req.method.name} needs the role ${roleName(needed)}`,
        Code.PermissionDenied,
      );
    }
    req.contextValues.set(CALLER_KEY, key);
    return next(req);
  };
}
