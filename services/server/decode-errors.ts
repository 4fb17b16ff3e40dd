import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { base64Decode } from "@bufbuild/protobuf/wire";

/**
 * Request gate for connect-node's handlers: a request whose message cannot be decoded is the
 * client's fault (INVALID_ARGUMENT), but connect-es reports it as INTERNAL, before any interceptor
 * runs. The cases:
 *
 * - Connect GET with `base64=1` and a `message` that is not base64: connect-es throws a plain Error,
 *   answered as HTTP 500. The gate runs before the query is decoded, so it checks the parameter with
 *   the same decoder and refuses the call itself.
 * - Protobuf binary that does not decode (gRPC, gRPC-web, Connect), or an envelope flagged
 *   compressed in a request that names no encoding: connect-es throws a `ConnectError` with
 *   Code.Internal, aborts the call's context with that error and then serialises the very same
 *   object. Its abort listener is the only code of ours between the two, so it relabels that object
 *   in place.
 */
export function decodeErrorGate(context: HandlerContext): void {
  if (context.requestMethod === "GET") refuseUndecodableQuery(context);
  const { signal } = context;
  signal.addEventListener("abort", () => relabelDecodeError(signal.reason, context), { once: true });
}

/** The prefix connect-es gives a request message that protobuf's binary reader refused. */
const parseBinaryPrefix = "parse binary: ";
/** What connect-es says of an envelope flagged compressed in a request that names no encoding. */
const compressedWithoutEncoding = "received compressed envelope, but do not know how to decompress";

function refuseUndecodableQuery(context: HandlerContext): void {
  const query = new URL(context.url).searchParams;
  if (query.get("base64") !== "1") return;
  try {
    base64Decode(query.get("message") ?? "");
  } catch {
    throw new ConnectError(
      `the "message" query parameter is not valid base64: encode the serialized ${context.method.input.typeName} with base64url (RFC 4648 §5), or drop base64=1 for a JSON message`,
      Code.InvalidArgument,
    );
  }
}

function relabelDecodeError(reason: unknown, context: HandlerContext): void {
  if (!(reason instanceof ConnectError) || reason.code !== Code.Internal) return;
  const input = context.method.input;
  let message: string;
  if (reason.rawMessage.startsWith(parseBinaryPrefix)) {
    const cause = reason.rawMessage.slice(parseBinaryPrefix.length);
    message = `the request could not be decoded as a protobuf ${input.typeName} (${cause}); send a serialized ${input.name} in the binary format`;
  } else if (reason.rawMessage === compressedWithoutEncoding) {
    message =
      "a request message is flagged compressed but the request names no encoding: send it uncompressed (flag 0) or name its encoding (grpc-encoding, connect-content-encoding)";
  } else {
    return;
  }
  const relabelled = new ConnectError(message, Code.InvalidArgument);
  // ConnectError's fields are read-only in its types only; the library already holds this object.
  Object.assign(reason, { code: relabelled.code, rawMessage: relabelled.rawMessage, message: relabelled.message });
}
