import type { DescMethod } from "@bufbuild/protobuf";
import { createContextValues, createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { permissionRefusal } from "../shared/auth/method-permission.js";
import { principalKey, type Principal } from "../shared/principal.js";

/**
 * The context for calling a StreamService handler straight from a plain-HTTP or WebSocket view, after
 * refusing a caller the RPC's own permission refuses: the view then runs exactly the RPC's logic, as
 * the caller, in the caller's workspace.
 */
export function directCallContext(principal: Principal, method: DescMethod, url: string, signal: AbortSignal): HandlerContext {
  const refusal = permissionRefusal(principal, method);
  if (refusal) throw refusal;
  return createHandlerContext({
    service: method.parent,
    method,
    protocolName: "websocket",
    requestMethod: "GET",
    url,
    requestSignal: signal,
    contextValues: createContextValues().set(principalKey, principal),
  });
}
