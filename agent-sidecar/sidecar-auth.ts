import { timingSafeEqual } from "node:crypto";
import { getOption } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { required_permission } from "../gen/mentatlab/v1/options_pb.js";

/** The permission of the SidecarService's own methods. */
export const sidecarPermission = "sidecar:agent";

/**
 * What the per-pod token grants: the SidecarService, and following streams (the sidecar proxies
 * StreamService.Subscribe for stream inputs, with its run token, in the run's workspace only).
 */
const grantedPermissions: ReadonlySet<string> = new Set([sidecarPermission, "stream:subscribe"]);

/**
 * Admits only callers presenting the per-pod token the sidecar handed its agent, and only to methods the
 * token grants: other processes in the pod (or on the node, for a loopback port) get in neither with a
 * mesh credential nor without one.
 */
export function sidecarAuthInterceptor(token: string): Interceptor {
  const expected = Buffer.from(`Bearer ${token}`);
  return (next) => async (req) => {
    const given = Buffer.from(req.header.get("authorization") ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ConnectError("send the token from MENTATLAB_SIDECAR_TOKEN as `Authorization: Bearer <token>`", Code.Unauthenticated);
    }
    const needed = getOption(req.method, required_permission);
    if (!grantedPermissions.has(needed)) {
      throw new ConnectError(
        `${req.method.name} needs ${needed || "an unknown permission"}; the sidecar token grants ${[...grantedPermissions].join(", ")}`,
        Code.PermissionDenied,
      );
    }
    return next(req);
  };
}
