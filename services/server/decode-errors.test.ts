import { create, toBinary } from "@bufbuild/protobuf";
import { connect as http2Connect } from "node:http2";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ValidateManifestRequestSchema } from "../../gen/mentatlab/v1/registry_pb.js";
import { startServer, type RunningServer } from "./server.js";
import { mountTransportFixture } from "./testing.js";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, routes: mountTransportFixture });
});
afterAll(() => server.close());

/** Not a protobuf message: field 1 with wire type 7, which does not exist. */
const garbage = new Uint8Array([0x0f, 0x00]);
const validate = "/mentatlab.v1.AgentRegistryService/ValidateManifest";
const upload = "/mentatlab.v1.StorageService/Upload";

function envelope(flags: number, payload: Uint8Array): Uint8Array<ArrayBuffer> {
  const framed = new Uint8Array(5 + payload.length);
  framed[0] = flags;
  new DataView(framed.buffer).setUint32(1, payload.length);
  framed.set(payload, 5);
  return framed;
}

/** The trailer block of a gRPC-web response body (its last envelope, flag 0x80). */
function grpcWebTrailers(body: Uint8Array): Map<string, string> {
  let offset = 0;
  while (offset < body.length) {
    const length = new DataView(body.buffer, body.byteOffset + offset + 1, 4).getUint32(0);
    const payload = body.subarray(offset + 5, offset + 5 + length);
    if (body[offset] === 0x80) {
      const lines = new TextDecoder().decode(payload).split("\r\n").filter(Boolean);
      return new Map(lines.map((line) => [line.slice(0, line.indexOf(":")).trim(), line.slice(line.indexOf(":") + 1).trim()]));
    }
    offset += 5 + length;
  }
  throw new Error("response has no trailer envelope");
}

/** The end-of-stream envelope (flag 0x02) of a Connect streaming response. */
function connectEndStream(body: Uint8Array): { error?: { code: string; message: string } } {
  const length = new DataView(body.buffer, body.byteOffset + 1, 4).getUint32(0);
  expect(body[0]).toBe(0x02);
  return JSON.parse(new TextDecoder().decode(body.subarray(5, 5 + length))) as { error?: { code: string; message: string } };
}

describe("undecodable protobuf on connect-node's protocols is INVALID_ARGUMENT", () => {
  it("Connect binary, unary, over HTTP/1.1", async () => {
    const response = await fetch(server.url + validate, {
      method: "POST",
      headers: { "content-type": "application/proto", "connect-protocol-version": "1" },
      body: garbage,
    });
    expect(response.status).toBe(400);
    const error = (await response.json()) as { code: string; message: string };
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain("could not be decoded as a protobuf mentatlab.v1.ValidateManifestRequest");
  });

  it("Connect binary, client stream, over HTTP/1.1", async () => {
    const response = await fetch(server.url + upload, {
      method: "POST",
      headers: { "content-type": "application/connect+proto", "connect-protocol-version": "1" },
      body: envelope(0, garbage),
    });
    const end = connectEndStream(new Uint8Array(await response.arrayBuffer()));
    expect(end.error?.code).toBe("invalid_argument");
    expect(end.error?.message).toContain("mentatlab.v1.UploadRequest");
  });

  it.each([
    ["unary", validate, "ValidateManifestRequest"],
    ["client stream", upload, "UploadRequest"],
  ])("gRPC-web, %s, over HTTP/1.1", async (_shape, path, input) => {
    const response = await fetch(server.url + path, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: envelope(0, garbage),
    });
    const trailers = grpcWebTrailers(new Uint8Array(await response.arrayBuffer()));
    expect(trailers.get("grpc-status")).toBe("3");
    expect(decodeURIComponent(trailers.get("grpc-message") ?? "")).toContain(`mentatlab.v1.${input}`);
  });

  it("an envelope flagged compressed in a request naming no encoding", async () => {
    const response = await fetch(server.url + validate, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto", "x-grpc-web": "1" },
      body: envelope(1, garbage),
    });
    const trailers = grpcWebTrailers(new Uint8Array(await response.arrayBuffer()));
    expect(trailers.get("grpc-status")).toBe("3");
    expect(decodeURIComponent(trailers.get("grpc-message") ?? "")).toContain("flagged compressed but the request names no encoding");
  });

  it("gRPC with a gzip'd message (served by connect-node, not the fast path)", async () => {
    const session = http2Connect(server.url);
    try {
      const stream = session.request({
        ":method": "POST",
        ":path": validate,
        "content-type": "application/grpc+proto",
        "grpc-encoding": "gzip",
        te: "trailers",
      });
      const trailers = new Promise<Record<string, unknown>>((resolve) => stream.on("trailers", (t) => resolve(t)));
      const headers = new Promise<Record<string, unknown>>((resolve) => stream.on("response", (h) => resolve(h)));
      stream.resume();
      stream.end(envelope(1, gzipSync(garbage)));
      const { "grpc-status": status, "grpc-message": message } = { ...(await headers), ...(await trailers) };
      expect(status).toBe("3");
      expect(decodeURIComponent(String(message))).toContain("mentatlab.v1.ValidateManifestRequest");
    } finally {
      session.close();
    }
  });
});

describe("Connect GET", () => {
  const get = (query: string) => fetch(`${server.url}${validate}?connect=v1&encoding=proto&${query}`);

  it("answers bad base64 with INVALID_ARGUMENT naming the parameter", async () => {
    const response = await get("base64=1&message=%25%25not-base64%25%25");
    expect(response.status).toBe(400);
    const error = (await response.json()) as { code: string; message: string };
    expect(error.code).toBe("invalid_argument");
    expect(error.message).toContain('"message" query parameter is not valid base64');
  });

  it("answers base64 of undecodable protobuf with INVALID_ARGUMENT", async () => {
    const response = await get(`base64=1&message=${Buffer.from(garbage).toString("base64url")}`);
    expect(response.status).toBe(400);
    expect(((await response.json()) as { code: string }).code).toBe("invalid_argument");
  });

  it("still serves a well-formed GET", async () => {
    const request = create(ValidateManifestRequestSchema, { source: { source: { case: "text", value: "x" } } });
    const message = Buffer.from(toBinary(ValidateManifestRequestSchema, request)).toString("base64url");
    const response = await get(`base64=1&message=${message}`);
    expect(response.status).toBe(200);
  });
});
