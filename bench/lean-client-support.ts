// A lean HTTP/2 client for the benchmarks: it frames requests itself and counts response bytes,
// decoding nothing, so a figure measures the server and not a client library.
import { once } from "node:events";
import { type ClientHttp2Session, connect, type IncomingHttpHeaders } from "node:http2";
import { MiB } from "./storage-bench-support.js";

/** A media client's windows: 4 MiB per stream, 32 MiB per connection (Node's default is 64 KiB). */
export async function leanSession(port: number): Promise<ClientHttp2Session> {
  const session = connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 4 * MiB } });
  await once(session, "connect");
  session.setLocalWindowSize(32 * MiB);
  return session;
}

export interface LeanCall {
  readonly path: string;
  /** Omitted for a plain GET. */
  readonly contentType?: string;
  readonly authorization?: string;
  /** The request body, written with backpressure; omitted for none. */
  readonly body?: Uint8Array | AsyncIterable<Uint8Array>;
  /** Keep the response body (small answers only), e.g. to read an upload's MediaRef. */
  readonly keepBody?: boolean;
}

export interface LeanAnswer {
  /** Response body bytes received. */
  readonly received: number;
  /** The response body, when asked to keep it. */
  readonly body: Buffer | undefined;
}

/**
 * One call; says how many response body bytes came back. A gRPC call that does not end with
 * grpc-status 0 throws with its status and message.
 */
export async function leanCall(session: ClientHttp2Session, call: LeanCall): Promise<LeanAnswer> {
  const headers = call.contentType
    ? {
        ":method": "POST",
        ":path": call.path,
        "content-type": call.contentType,
        te: "trailers",
        ...(call.authorization ? { authorization: call.authorization } : {}),
      }
    : { ":path": call.path };
  const req = session.request(headers);
  let trailers: IncomingHttpHeaders = {};
  let status: IncomingHttpHeaders = {};
  req.once("response", (received) => (status = received));
  req.once("trailers", (received) => (trailers = received));
  const sending = writeBody(req, call.body);
  let received = 0;
  const kept: Buffer[] = [];
  for await (const chunk of req) {
    received += (chunk as Buffer).byteLength;
    if (call.keepBody) kept.push(chunk as Buffer);
  }
  await sending;
  const grpcStatus = trailers["grpc-status"] ?? status["grpc-status"];
  if (call.contentType?.startsWith("application/grpc") && grpcStatus !== "0") {
    throw new Error(`${call.path} ended with grpc-status ${String(grpcStatus)}: ${String(trailers["grpc-message"] ?? status["grpc-message"])}`);
  }
  return { received, body: call.keepBody ? Buffer.concat(kept) : undefined };
}

async function writeBody(req: ReturnType<ClientHttp2Session["request"]>, body: LeanCall["body"]): Promise<void> {
  if (body === undefined || body instanceof Uint8Array) {
    req.end(body);
    return;
  }
  for await (const chunk of body) {
    if (!req.write(chunk)) await once(req, "drain");
  }
  req.end();
}
