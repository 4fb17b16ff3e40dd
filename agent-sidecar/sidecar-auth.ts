import { timingSafeEqual } from "node:crypto";
import { getOption } from "@bufbuild/protobuf";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { required_permission } from "../gen/mentatlab/v1/options_pb.js";

/** The one permission the per-pod sidecar token grants. */
export const sidecarPermission = "sidecar:agent";

/**
 * Admits only callers presenting the per-pod token the sidecar handed its agent, and only to methods
 * that require `sidecar:agent`: other processes in the pod (or on the node, for a loopback port) get in
 * neither with a mesh credential nor without one.
 */
export function sidecarAuthInterceptor(token: string): Interceptor {
  const expected = Buffer.from(`Bearer ${token}`);
  return (next) => async (req) => {
    const given = Buffer.from(req.header.get("authorization") ?? "");
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      throw new ConnectError(
        "send the token from MENTATLAB_SIDECAR_TOKEN as `Authorization: Bearer <token>`",
        Code.Unauthenticated,
      );
    }
    const needed = getOption(req.method, required_permission);
    if (needed !== sidecarPermission) {
      throw new ConnectError(`${req.method.name} needs ${needed || "an unknown permission"}, the sidecar token grants ${sidecarPermission}`, Code.PermissionDenied);
    }
    return next(req);
  };
}
