import { Code, ConnectError } from "@connectrpc/connect";
import { mergeNonProtocolHeaders } from "@connectrpc/connect/protocol";
import { codeToHttpStatus, endStreamToJson, errorToJsonBytes, parseTimeout as parseConnectTimeout } from "@connectrpc/connect/protocol-connect";
import { parseTimeout as parseGrpcTimeout, setTrailerStatus } from "@connectrpc/connect/protocol-grpc";
import type { IncomingHttpHeaders } from "node:http2";
import { endStreamFlag, flaggedEnvelope } from "./framing.js";

// These helpers come from connect-es's protocol packages, which it marks private (no semver
// guarantee): the exact version pin in package.json keeps them stable, and only this folder uses them.

/** How a call's status travels back: gRPC trailers, a Connect end-of-stream message, or a unary Connect body. */
export type WireProtocol = typeof grpc | typeof connectStream | typeof connectUnary;

/** gRPC over HTTP/2: enveloped messages, status in trailers. */
export const grpc = {
  kind: "grpc",
  name: "grpc",
  enveloped: true,
  responseContentType: "application/grpc+proto",
  acceptEncodingHeader: "grpc-accept-encoding",
  encodingHeader: "grpc-encoding",
  parseTimeout: (headers: IncomingHttpHeaders) => parseGrpcTimeout(single(headers["grpc-timeout"]), Number.MAX_SAFE_INTEGER),
  /** The trailers that end a call with `error`, or OK. */
  trailers(trailer: Headers, error: ConnectError | undefined): Headers | typeof okTrailers {
    if (!error && isEmpty(trailer)) return okTrailers;
    const out = setTrailerStatus(new Headers(trailer), error);
    // The gRPC spec percent-encodes only '%' and bytes outside printable ASCII: grpc-js shows any
    // other escape (`%3A` for ':') to its users as is.
    if (error) out.set("grpc-message", encodeGrpcMessage(error.rawMessage));
    return out;
  },
} as const;

/** The Connect streaming protocol, binary: enveloped messages, then an end-of-stream message. */
export const connectStream = {
  kind: "connect-stream",
  name: "connect",
  enveloped: true,
  responseContentType: "application/connect+proto",
  acceptEncodingHeader: "connect-accept-encoding",
  encodingHeader: "connect-content-encoding",
  parseTimeout: (headers: IncomingHttpHeaders) => parseConnectTimeout(single(headers["connect-timeout-ms"]), Number.MAX_SAFE_INTEGER),
  endStream(trailer: Headers, error: ConnectError | undefined): Uint8Array {
    return flaggedEnvelope(endStreamFlag, new TextEncoder().encode(JSON.stringify(endStreamToJson(trailer, error, undefined))));
  },
} as const;

/** The Connect unary protocol, binary: the body is the message; errors are JSON with an HTTP status. */
export const connectUnary = {
  kind: "connect-unary",
  name: "connect",
  enveloped: false,
  responseContentType: "application/proto",
  acceptEncodingHeader: "accept-encoding",
  encodingHeader: "content-encoding",
  parseTimeout: connectStream.parseTimeout,
  error(error: ConnectError, header: Headers): { status: number; body: Uint8Array } {
    if (!error.isWireError) mergeNonProtocolHeaders(header, error.metadata);
    return { status: codeToHttpStatus(error.code), body: errorToJsonBytes(error, {}) };
  },
} as const;

/**
 * The protocol of a request this path serves, or undefined to leave it to Connect: gRPC and binary
 * Connect without compression. JSON, gRPC-web and compressed requests stay with Connect.
 */
export function protocolOf(headers: IncomingHttpHeaders): WireProtocol | undefined {
  if (headers[":method"] !== "POST") return undefined;
  const contentType = headers["content-type"];
  switch (contentType) {
    case "application/grpc":
    case "application/grpc+proto":
      return identity(headers["grpc-encoding"]) ? grpc : undefined;
    case "application/connect+proto":
      return identity(headers["connect-content-encoding"]) ? connectStream : undefined;
    case "application/proto":
      return identity(headers["content-encoding"]) ? connectUnary : undefined;
    default:
      return undefined;
  }
}

/** Turns anything a handler threw into the ConnectError its client is shown. */
export function asConnectError(err: unknown): ConnectError {
  return err instanceof ConnectError ? err : new ConnectError("internal error", Code.Internal, undefined, undefined, err);
}

/** Percent-encodes a grpc-message value as the gRPC spec asks: '%' and bytes outside 0x20–0x7E. */
export function encodeGrpcMessage(message: string): string {
  let out = "";
  for (const byte of Buffer.from(message, "utf8")) {
    out += byte < 0x20 || byte > 0x7e || byte === 0x25 ? `%${byte.toString(16).toUpperCase().padStart(2, "0")}` : String.fromCharCode(byte);
  }
  return out;
}

/** The trailers of a call that ended OK and set none of its own: the common case, built once. */
const okTrailers = { "grpc-status": "0" } as const;

function isEmpty(headers: Headers): boolean {
  for (const _ of headers.keys()) return false;
  return true;
}

function identity(value: string | string[] | undefined): boolean {
  return value === undefined || value === "identity";
}

function single(value: string | string[] | undefined): string | null {
  return (Array.isArray(value) ? value[0] : value) ?? null;
}
