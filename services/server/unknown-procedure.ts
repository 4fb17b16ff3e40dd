import { Code, ConnectError } from "@connectrpc/connect";
import { errorToJsonBytes, endStreamToJson } from "@connectrpc/connect/protocol-connect";
import { endStreamFlag, flaggedEnvelope } from "./fast-path/framing.js";
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

/** An RPC error answered without running any handler: status line, headers and the whole body. */
export interface RpcErrorAnswer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly body: Uint8Array;
}

/** The request's media type, lower case, without parameters. */
export function mediaType(contentType: string | null | undefined): string {
  return (contentType ?? "").split(";")[0]!.trim().toLowerCase();
}

/**
 * `error` in the caller's own protocol, judged by its request's media type, so that a generated
 * client reports the code and message rather than an HTTP failure; undefined when the media type is
 * not an RPC's.
 */
export function rpcErrorAnswer(error: ConnectError, contentType: string): RpcErrorAnswer | undefined {
  if (contentType.startsWith("application/grpc")) {
    // gRPC and gRPC-web both take a status in the headers of an empty answer ("trailers-only").
    return {
      status: 200,
      headers: { "content-type": contentType, "grpc-status": String(error.code), "grpc-message": encodeGrpcMessage(error.rawMessage) },
      body: new Uint8Array(0),
    };
  }
  if (contentType.startsWith("application/connect+")) {
    const json = new TextEncoder().encode(JSON.stringify(endStreamToJson(new Headers(), error, undefined)));
    return { status: 200, headers: { "content-type": contentType }, body: flaggedEnvelope(endStreamFlag, json) };
  }
  if (contentType === "application/json" || contentType === "application/proto") {
    return { status: 404, headers: { "content-type": "application/json" }, body: errorToJsonBytes(error, {}) };
  }
  return undefined;
}

/**
 * UNIMPLEMENTED for an RPC to an unknown procedure, where connect's routers would answer a
 * plain-text 404 that generated clients can only report as an HTTP failure. Undefined for anything
 * that is not an RPC (plain-HTTP routes, the web UI), which goes on to those.
 */
export function unknownProcedureAnswer(method: string, path: string, contentType: string): RpcErrorAnswer | undefined {
  if (method !== "POST" || !procedurePath.test(path)) return undefined;
  return rpcErrorAnswer(unknownProcedure(path), contentType);
}

/** Answers an unknown procedure on Node's server (HTTP/1.1, gRPC-web, Connect JSON); false if the request is no RPC. */
export function answerUnknownProcedure(req: NodeRequest, res: NodeResponse): boolean {
  const path = (req.url ?? "").split("?")[0] ?? "";
  const answer = unknownProcedureAnswer(req.method ?? "GET", path, mediaType(req.headers["content-type"]));
  if (answer === undefined) return false;
  discardUnreadBody(req);
  for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
  res.statusCode = answer.status;
  res.end(answer.body);
  return true;
}
