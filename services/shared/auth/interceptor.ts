import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { principalKey } from "../principal.js";
import type { Authenticator } from "./authenticator.js";
import { permissionRefusal } from "./method-permission.js";

/**
 * The one place every RPC is authenticated and authorised: it reads the permission the method declares
 * in its proto (`option (required_permission)`) and checks the caller's roles grant it. Services in
 * `openServices` (health, reflection) need no credentials; a method of any other service without a
 * declared permission is refused, so a forgotten annotation fails closed.
 */
export function authInterceptor(authenticator: Authenticator, openServices: ReadonlySet<string>): Interceptor {
  return (next) => async (req) => {
    if (openServices.has(req.service.typeName)) return next(req);
    const principal = authenticator.authenticate(req.header.get("authorization"));
    if (!principal) {
      throw new ConnectError("missing or invalid credentials: send `Authorization: Bearer <api key>`", Code.Unauthenticated);
    }
    const refusal = permissionRefusal(principal, req.method);
    if (refusal) throw refusal;
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}
