import { Code, ConnectError, type HandlerContext } from "@connectrpc/connect";
import { base64Decode } from "@bufbuild/protobuf/wire";

/**
 * Request gate for connect-node's handlers: a request whose message cannot be decoded is the
 * client's fault (INVALID_ARGUMENT), but connect-es reports it as INTERNAL, before any interceptor
 * runs. Two cases:
 *
 * - Connect GET with `base64=1` and a `message` that is not base64: connect-es throws a plain Error,
 *   answered as HTTP 500. The gate runs before the query is decoded, so it checks the parameter with
 *   the same decoder and refuses the call itself.
 * - Protobuf binary that does not decode (gRPC, gRPC-web, Connect): connect-es throws
 *   `ConnectError("parse binary: …", Code.Internal)`, aborts the call's context with that error and
 *   then serialises the very same object. Its abort listener is the only code of ours between the two,
 *   so it relabels that object in place.
 */
export function decodeErrorGate(context: HandlerContext): void {
  if (context.requestMethod === "GET") refuseUndecodableQuery(context);
  const { signal } = context;
  signal.addEventListener("abort", () => relabelParseError(signal.reason, context), { once: true });
}

/** The prefix connect-es gives a request message that protobuf's binary reader refused. */
const parseBinaryPrefix = "parse binary: ";

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

function relabelParseError(reason: unknown, context: HandlerContext): void {
  if (!(reason instanceof ConnectError) || reason.code !== Code.Internal || !reason.rawMessage.startsWith(parseBinaryPrefix)) return;
  const cause = reason.rawMessage.slice(parseBinaryPrefix.length);
  const relabelled = new ConnectError(
    `the request could not be decoded as a protobuf ${context.method.input.typeName} (${cause}); send a serialized ${context.method.input.name} in the binary format`,
    Code.InvalidArgument,
  );
  // ConnectError's fields are read-only in its types only; the library already holds this object.
  Object.assign(reason, { code: relabelled.code, rawMessage: relabelled.rawMessage, message: relabelled.message });
}
