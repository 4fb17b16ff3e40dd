import { Code, ConnectError } from "@connectrpc/connect";
import { errorToJsonBytes, endStreamToJson } from "@connectrpc/connect/protocol-connect";
import { encodeGrpcMessage } from "./fast-path/protocols.js";
import { discardUnreadBody, type NodeRequest, type NodeResponse } from "./node-fetch-bridge.js";

/** What a caller of a procedure this port does not serve is told, whatever its protocol. */
export function unknownProcedure(path: string): ConnectError {
  return new ConnectError(
    `${path.slice(1)} is not served on this port: check the service name and the server address (pod-local services such as the SidecarService are served by the agent sidecar)`,
    Code.Unimplemented,
  );
}

/** `/package.Service/Method`: the shape of every RPC path. */
const procedurePath = /^\/[A-Za-z_][\w.]*\/[A-Za-z_]\w*$/;

/**
 * Answers an RPC to an unknown procedure over the protocols connect-node serves (HTTP/1.1, gRPC-web,
 * Connect JSON) with UNIMPLEMENTED in the caller's own protocol, where connect-node would answer a
 * plain-text 404 that generated clients can only report as an HTTP failure. False for anything that
 * is not an RPC (plain-HTTP routes, the web UI), which goes on to those.
 */
export function answerUnknownProcedure(req: NodeRequest, res: NodeResponse): boolean {
  const path = (req.url ?? "").split("?")[0] ?? "";
  const contentType = (req.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
  if (req.method !== "POST" || !procedurePath.test(path)) return false;
  const error = unknownProcedure(path);
  if (contentType.startsWith("application/grpc")) {
    // gRPC and gRPC-web both take a status in the headers of an empty answer ("trailers-only").
    answer(req, res, 200, { "content-type": contentType, "grpc-status": String(error.code), "grpc-message": encodeGrpcMessage(error.rawMessage) });
    return true;
  }
  if (contentType.startsWith("application/connect+")) {
    const json = new TextEncoder().encode(JSON.stringify(endStreamToJson(new Headers(), error, undefined)));
    const end = Buffer.alloc(5 + json.byteLength);
    end[0] = 0x02;
    end.writeUInt32BE(json.byteLength, 1);
    end.set(json, 5);
    answer(req, res, 200, { "content-type": contentType }, end);
    return true;
  }
  if (contentType === "application/json" || contentType === "application/proto") {
    answer(req, res, 404, { "content-type": "application/json" }, errorToJsonBytes(error, {}));
    return true;
  }
  return false;
}

function answer(req: NodeRequest, res: NodeResponse, status: number, headers: Record<string, string>, body?: Uint8Array): void {
  discardUnreadBody(req);
  for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
  res.statusCode = status;
  res.end(body ?? new Uint8Array(0));
}
