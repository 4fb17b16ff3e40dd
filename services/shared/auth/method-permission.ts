import { getOption, type DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { required_permission } from "../../../gen/mentatlab/v1/options_pb.js";
import type { Principal } from "../principal.js";

/**
 * Why `principal` may not call `method`, or undefined when its roles grant the permission the method
 * declares in its proto. Shared by the RPC interceptor and the plain-HTTP routes that serve the same
 * data (a media GET is a Download, an SSE view is a Subscribe), so both refuse the same callers.
 */
export function permissionRefusal(principal: Principal, method: DescMethod): ConnectError | undefined {
  const permission = permissionOf(method);
  const rpc = `${method.parent.typeName}/${method.name}`;
  if (!permission) {
    // A forgotten annotation fails closed.
    return new ConnectError(`${rpc} declares no permission`, Code.Internal);
  }
  if (principal.permissions.has(permission)) return undefined;
  return new ConnectError(
    `${principal.user}@${principal.workspace} lacks permission "${permission}" required by ` + `${rpc} (roles: ${principal.roles.join(", ") || "none"})`,
    Code.PermissionDenied,
  );
}

// Read once per method: the option lookup decodes the method's options on every call otherwise.
const permissions = new WeakMap<DescMethod, string>();
function permissionOf(method: DescMethod): string {
  let permission = permissions.get(method);
  if (permission === undefined) permissions.set(method, (permission = getOption(method, required_permission)));
  return permission;
}
