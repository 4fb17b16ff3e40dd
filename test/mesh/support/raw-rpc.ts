// Sends request bodies as they are, in each protocol the mesh serves, and reads back the status
// the protocol carries: no generated client, so nothing is validated on the way out.
import { request as http1Request, Agent } from "node:http";
import { connect as http2Connect, type ClientHttp2Session } from "node:http2";

/** The status a call ended with, or why none could be read. */
export type CallStatus = { readonly code: number; readonly message: string } | { readonly missing: string };

export interface RawCall {
  readonly path: string;
  readonly method: "POST" | "GET";
  readonly query?: string;
  readonly headers: Record<string, string>;
  readonly body: Uint8Array;
}

export type Protocol = "grpc" | "grpc-web" | "connect-unary" | "connect-stream";

/** Connect's error code names, as numbers (https://connectrpc.com/docs/protocol#error-codes). */
const connectCodes = [
  "ok",
  "canceled",
  "unknown",
  "invalid_argument",
  "deadline_exceeded",
  "not_found",
  "already_exists",
  "permission_denied",
  "resource_exhausted",
  "failed_precondition",
  "aborted",
  "out_of_range",
  "unimplemented",
  "internal",
  "unavailable",
  "data_loss",
  "unauthenticated",
];

export function envelope(flags: number, payload: Uint8Array, declaredLength = payload.length): Uint8Array {
  const framed = new Uint8Array(5 + payload.length);
  framed[0] = flags;
  new DataView(framed.buffer).setUint32(1, declaredLength);
  framed.set(payload, 5);
  return framed;
}

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly trailers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Reads envelopes; returns the payload of the first one whose flags match `flag`. */
function envelopeWithFlag(body: Buffer, flag: number): Buffer | undefined {
  let offset = 0;
  while (offset + 5 <= body.length) {
    const length = body.readUInt32BE(offset + 1);
    if ((body[offset]! & flag) === flag) return body.subarray(offset + 5, offset + 5 + length);
    offset += 5 + length;
  }
  return undefined;
}

function grpcStatus(fields: Record<string, string | string[] | undefined>): CallStatus | undefined {
  const status = first(fields["grpc-status"]);
  if (status === undefined) return undefined;
  return { code: Number(status), message: decodeURIComponent(first(fields["grpc-message"]) ?? "") };
}

function connectError(text: string, httpStatus: number): CallStatus {
  try {
    const parsed = JSON.parse(text) as { code?: string; message?: string };
    const code = connectCodes.indexOf(parsed.code ?? "");
    return code < 0 ? { missing: `HTTP ${httpStatus} with body ${text.slice(0, 200)}` } : { code, message: parsed.message ?? "" };
  } catch {
    return { missing: `HTTP ${httpStatus} with a body that is not a Connect error: ${text.slice(0, 200)}` };
  }
}

/** The status of a response, read the way the protocol's clients read it. */
export function statusOf(protocol: Protocol, response: RawResponse): CallStatus {
  switch (protocol) {
    case "grpc":
      return grpcStatus(response.trailers) ?? grpcStatus(response.headers) ?? { missing: `HTTP ${response.status}, no grpc-status` };
    case "grpc-web": {
      const inHeaders = grpcStatus(response.headers);
      if (inHeaders) return inHeaders;
      const trailer = envelopeWithFlag(response.body, 0x80);
      if (!trailer) return { missing: `HTTP ${response.status}, no trailer envelope` };
      const fields = Object.fromEntries(
        trailer
          .toString("utf8")
          .split("\r\n")
          .filter(Boolean)
          .map((line) => [line.slice(0, line.indexOf(":")).trim().toLowerCase(), line.slice(line.indexOf(":") + 1).trim()]),
      );
      return grpcStatus(fields) ?? { missing: "trailer envelope without grpc-status" };
    }
    case "connect-unary":
      return response.status === 200 ? { code: 0, message: "" } : connectError(response.body.toString("utf8"), response.status);
    case "connect-stream": {
      if (response.status !== 200) return connectError(response.body.toString("utf8"), response.status);
      const end = envelopeWithFlag(response.body, 0x02);
      if (!end) return { missing: "no end-of-stream envelope" };
      const parsed = JSON.parse(end.toString("utf8")) as { error?: { code?: string; message?: string } };
      return parsed.error ? connectError(JSON.stringify(parsed.error), 200) : { code: 0, message: "" };
    }
  }
}

/** A call that runs past this has hung: it is reported as having no status. */
const callTimeoutMs = 10_000;

/** One HTTP/2 connection (prior knowledge, as gRPC clients use) for all h2 calls. */
export class Http2Caller {
  private session: ClientHttp2Session | undefined;
  constructor(private readonly baseUrl: string) {}

  /** The live session, or a new one: a connection-level error on one call must not fail the next ones. */
  private live(): ClientHttp2Session {
    if (!this.session || this.session.closed || this.session.destroyed) {
      const session = http2Connect(this.baseUrl);
      session.on("error", () => {});
      session.on("goaway", () => session.close());
      this.session = session;
    }
    return this.session;
  }

  call(call: RawCall): Promise<RawResponse | { failed: string }> {
    return new Promise((resolve) => {
      const stream = this.live().request({ ":method": call.method, ":path": call.path + (call.query ? `?${call.query}` : ""), ...call.headers });
      const chunks: Buffer[] = [];
      let headers: Record<string, string | string[] | undefined> = {};
      let trailers: Record<string, string | string[] | undefined> = {};
      const timer = setTimeout(() => {
        stream.close();
        resolve({ failed: `no answer within ${callTimeoutMs} ms` });
      }, callTimeoutMs);
      stream.on("response", (h) => (headers = h));
      stream.on("trailers", (t) => (trailers = t));
      stream.on("data", (chunk: Buffer) => chunks.push(chunk));
      stream.on("error", (error) => {
        clearTimeout(timer);
        resolve({ failed: `stream error: ${error.message}` });
      });
      stream.on("close", () => {
        clearTimeout(timer);
        if (stream.rstCode && stream.rstCode !== 0 && headers[":status"] === undefined) resolve({ failed: `stream reset with code ${stream.rstCode}` });
        else resolve({ status: Number(headers[":status"] ?? 0), headers, trailers, body: Buffer.concat(chunks) });
      });
      stream.end(call.method === "POST" ? call.body : undefined);
    });
  }

  close(): void {
    this.session?.close();
  }
}

/** HTTP/1.1 with keep-alive, as browsers and curl send gRPC-web and Connect. */
export class Http1Caller {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 16 });
  constructor(private readonly baseUrl: string) {}

  call(call: RawCall): Promise<RawResponse | { failed: string }> {
    return new Promise((resolve) => {
      const url = new URL(call.path + (call.query ? `?${call.query}` : ""), this.baseUrl);
      const request = http1Request(url, { method: call.method, headers: call.headers, agent: this.agent, timeout: callTimeoutMs }, (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () =>
          resolve({ status: response.statusCode ?? 0, headers: response.headers, trailers: response.trailers, body: Buffer.concat(chunks) }),
        );
        response.on("error", (error) => resolve({ failed: `response error: ${error.message}` }));
      });
      request.on("timeout", () => request.destroy(new Error(`no answer within ${callTimeoutMs} ms`)));
      request.on("error", (error) => resolve({ failed: `request error: ${error.message}` }));
      request.end(call.method === "POST" ? call.body : undefined);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}
