import { type DescMethod, getOption } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { required_permission } from "../../../gen/mentatlab/v1/options_pb.js";
import { principalKey } from "../principal.js";
import type { Authenticator } from "./authenticator.js";

// Read once per method: the option lookup decodes the method's options on every call otherwise.
const permissions = new WeakMap<DescMethod, string>();
function permissionOf(method: DescMethod): string {
  let permission = permissions.get(method);
  if (permission === undefined) permissions.set(method, (permission = getOption(method, required_permission)));
  return permission;
}

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
      throw new ConnectError(
        "missing or invalid credentials: send `Authorization: Bearer <api key>`",
        Code.Unauthenticated,
      );
    }
    const permission = permissionOf(req.method);
    if (!permission) {
      throw new ConnectError(`${req.method.parent.typeName}.${req.method.name} declares no permission`, Code.Internal);
    }
    if (!principal.permissions.has(permission)) {
      throw new ConnectError(
        `${principal.user}@${principal.workspace} lacks permission "${permission}" required by ` +
          `${req.method.parent.typeName}/${req.method.name} (roles: ${principal.roles.join(", ") || "none"})`,
        Code.PermissionDenied,
      );
    }
    req.contextValues.set(principalKey, principal);
    return next(req);
  };
}
