import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createClient, type Transport } from "@connectrpc/connect";
import { compressionGzip, createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import * as grpc from "@grpc/grpc-js";
import { connect } from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as reflection from "../../../gen/grpc/reflection/v1/reflection_pb.js";
import { AgentRegistryService } from "../../../gen/mentatlab/v1/registry_pb.js";
import { DownloadRequestSchema, DownloadResponseSchema, StorageService, UploadRequestSchema } from "../../../gen/mentatlab/v1/storage_pb.js";
import { type RunningServer, startServer } from "../server.js";
import { mountTransportFixture } from "../testing.js";
import { envelope } from "./framing.js";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, routes: mountTransportFixture, readMaxBytes: 1024 * 1024, uncompressedServices: [StorageService.typeName] });
});
afterAll(() => server.close());

/** One call of each RPC shape, as a user of a generated client makes it; each returns what it saw. */
const shapes = {
  unary: {
    path: "/mentatlab.v1.AgentRegistryService/ValidateManifest",
    async call(transport: Transport) {
      const response = await createClient(AgentRegistryService, transport).validateManifest({ source: { source: { case: "text", value: "hi" } } });
      return response.violations[0]?.message;
    },
    expected: "fixture echoes: hi",
  },
  "client streaming": {
    path: "/mentatlab.v1.StorageService/Upload",
    async call(transport: Transport) {
      async function* requests() {
        yield create(UploadRequestSchema, { part: { case: "header", value: { filename: "a.bin" } } });
        for (let i = 0; i < 3; i++) yield create(UploadRequestSchema, { part: { case: "chunk", value: new Uint8Array(100_000).fill(i) } });
      }
      const response = await createClient(StorageService, transport).upload(requests());
      return `${response.ref?.filename} ${response.ref?.sizeBytes}`;
    },
    expected: "a.bin 300000",
  },
  "server streaming": {
    path: "/mentatlab.v1.StorageService/Download",
    async call(transport: Transport) {
      let bytes = 0;
      let chunks = 0;
      for await (const response of createClient(StorageService, transport).download({ refId: "zeros", length: 300_000n, chunkBytes: 65_536 })) {
        if (response.part.case === "chunk") {
          bytes += response.part.value.data.byteLength;
          chunks++;
        }
      }
      return `${chunks} chunks, ${bytes} bytes`;
    },
    expected: "5 chunks, 300000 bytes",
  },
  bidi: {
    path: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    async call(transport: Transport) {
      async function* requests() {
        yield create(reflection.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
        yield create(reflection.ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "nope.Nope" } });
      }
      const answers: string[] = [];
      for await (const response of createClient(reflection.ServerReflection, transport).serverReflectionInfo(requests())) {
        answers.push(response.messageResponse.case ?? "none");
      }
      return answers.join(",");
    },
    expected: "listServicesResponse,errorResponse",
  },
} as const;

const fastTransports: Record<string, () => Transport> = {
  "gRPC (h2c)": () => createGrpcTransport({ baseUrl: server.url }),
  "Connect binary over HTTP/2": () => createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: true }),
};

type Shape = keyof typeof shapes;
const allShapes = Object.keys(shapes) as Shape[];
const halfDuplex = allShapes.filter((shape) => shape !== "bidi");

/** Transports Connect serves, each with the shapes it can carry (media services refuse compressed requests). */
const connectTransports: Record<string, { make: () => Transport; shapes: readonly Shape[] }> = {
  "Connect JSON over HTTP/2": { make: () => createConnectTransport({ baseUrl: server.url, httpVersion: "2", useBinaryFormat: false }), shapes: allShapes },
  "Connect binary over HTTP/1.1": {
    make: () => createConnectTransport({ baseUrl: server.url, httpVersion: "1.1", useBinaryFormat: true }),
    shapes: halfDuplex,
  },
  "gRPC-web over HTTP/1.1": { make: () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "1.1" }), shapes: halfDuplex },
  "gRPC-web over HTTP/2": { make: () => createGrpcWebTransport({ baseUrl: server.url, httpVersion: "2" }), shapes: allShapes },
  "gRPC with gzip'd requests": { make: () => createGrpcTransport({ baseUrl: server.url, sendCompression: compressionGzip }), shapes: ["unary", "bidi"] },
};

describe.each(Object.entries(fastTransports))("%s", (name, make) => {
  const protocol = name.startsWith("gRPC") ? "grpc" : undefined;
  it.each(Object.entries(shapes))("serves a %s call on the fast path", async (shape, { path, call, expected }) => {
    const kind = protocol ?? (shape === "unary" ? "connect-unary" : "connect-stream");
    const before = server.fastPathCalls.get(`${kind} ${path}`) ?? 0;
    expect(await call(make())).toBe(expected);
    expect(server.fastPathCalls.get(`${kind} ${path}`)).toBe(before + 1);
  });
});

describe.each(Object.entries(connectTransports))("%s", (_name, { make, shapes: carried }) => {
  it.each(Object.entries(shapes).filter(([shape]) => carried.includes(shape as Shape)))(
    "leaves a %s call to Connect, same answer",
    async (_shape, { call, expected }) => {
      const before = new Map(server.fastPathCalls);
      expect(await call(make())).toBe(expected);
      expect(new Map(server.fastPathCalls)).toEqual(before);
    },
  );
});

describe("the fast path's errors, limits and deadlines", () => {
  const grpcStorage = () => createClient(StorageService, createGrpcTransport({ baseUrl: server.url }));

  it("answers INVALID_ARGUMENT, not INTERNAL, to bytes that are not the request message", async () => {
    for (const contentType of ["application/grpc", "application/proto"]) {
      const session = connect(server.url);
      const body = contentType === "application/grpc" ? envelope(Uint8Array.of(0x0f, 0x00)) : Uint8Array.of(0x0f, 0x00);
      const answer = await rawCall(session, "/mentatlab.v1.StorageService/Stat", contentType, body);
      session.close();
      if (contentType === "application/grpc") {
        expect(answer.trailers["grpc-status"] ?? answer.headers["grpc-status"]).toBe(String(Code.InvalidArgument));
        expect(String(answer.trailers["grpc-message"] ?? answer.headers["grpc-message"])).toContain("not a valid mentatlab.v1.StatRequest");
      } else {
        expect(answer.headers[":status"]).toBe(400);
        expect(JSON.parse(answer.body)).toMatchObject({ code: "invalid_argument" });
      }
    }
  });

  it("refuses a message over readMaxBytes with RESOURCE_EXHAUSTED", async () => {
    async function* tooBig() {
      yield create(UploadRequestSchema, { part: { case: "chunk", value: new Uint8Array(2 * 1024 * 1024) } });
    }
    await expect(grpcStorage().upload(tooBig())).rejects.toMatchObject({ code: Code.ResourceExhausted });
  });

  it("ends a call past its deadline with DEADLINE_EXCEEDED", async () => {
    const started = Date.now();
    const call = async () => {
      for await (const _ of grpcStorage().download({ refId: "slow:50", length: 1000n }, { timeoutMs: 300 })) void _;
    };
    await expect(call()).rejects.toMatchObject({ code: Code.DeadlineExceeded });
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("cancels the handler when the client goes away", async () => {
    const abort = new AbortController();
    const call = async () => {
      for await (const response of grpcStorage().download({ refId: "slow:20", length: 1000n }, { signal: abort.signal })) {
        if (response.part.case === "chunk" && response.part.value.offset === 3n) abort.abort();
      }
    };
    await expect(call()).rejects.toBeInstanceOf(ConnectError);
  });

  it("answers UNIMPLEMENTED as a gRPC status for a method this server does not serve", async () => {
    const session = connect(server.url);
    const answer = await rawCall(session, "/mentatlab.v1.SidecarService/GetInputs", "application/grpc", envelope(new Uint8Array(0)));
    session.close();
    expect(answer.trailers["grpc-status"] ?? answer.headers["grpc-status"]).toBe(String(Code.Unimplemented));
    expect(String(answer.trailers["grpc-message"] ?? answer.headers["grpc-message"])).toContain("SidecarService/GetInputs is not served on this port");
  });
});

describe("bulk bytes written as the handler's own buffers", () => {
  it("decode to the same chunks in grpc-js with protobufjs as in protobuf-es", async () => {
    const client = new grpc.Client(`127.0.0.1:${server.port}`, grpc.credentials.createInsecure());
    const request = toBinary(DownloadRequestSchema, create(DownloadRequestSchema, { refId: "zeros", length: 200_000n, chunkBytes: 65_536 }));
    const call = client.makeServerStreamRequest(
      "/mentatlab.v1.StorageService/Download",
      (b: Buffer) => b,
      (b: Buffer) => b,
      Buffer.from(request),
    );
    const offsets: string[] = [];
    for await (const raw of call as AsyncIterable<Buffer>) {
      const message = fromBinary(DownloadResponseSchema, raw);
      if (message.part.case === "chunk") offsets.push(`${message.part.value.offset}+${message.part.value.data.byteLength}`);
    }
    client.close();
    expect(offsets).toEqual(["0+65536", "65536+65536", "131072+65536", "196608+3392"]);
  });
});

interface RawAnswer {
  headers: Record<string, string | number | string[] | undefined>;
  trailers: Record<string, string | number | string[] | undefined>;
  body: string;
}

function rawCall(session: ReturnType<typeof connect>, path: string, contentType: string, body: Uint8Array): Promise<RawAnswer> {
  return new Promise((resolve, reject) => {
    const stream = session.request({ ":method": "POST", ":path": path, "content-type": contentType, te: "trailers" });
    const answer: RawAnswer = { headers: {}, trailers: {}, body: "" };
    stream.on("response", (headers) => (answer.headers = headers));
    stream.on("trailers", (trailers) => (answer.trailers = trailers));
    stream.on("data", (chunk: Buffer) => (answer.body += chunk.toString()));
    stream.on("end", () => resolve(answer));
    stream.on("error", reject);
    stream.end(body);
  });
}

describe("a procedure this server does not serve", () => {
  const sidecar = "/mentatlab.v1.SidecarService/GetInputs";
  it("is UNIMPLEMENTED, in the caller's protocol, over every transport Connect serves too", async () => {
    const grpcWeb = await fetch(`${server.url}${sidecar}`, {
      method: "POST",
      headers: { "content-type": "application/grpc-web+proto" },
      body: new Uint8Array(5),
    });
    expect(grpcWeb.headers.get("grpc-status")).toBe(String(Code.Unimplemented));
    const connectJson = await fetch(`${server.url}${sidecar}`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    expect(connectJson.status).toBe(404);
    expect(await connectJson.json()).toMatchObject({
      code: "unimplemented",
      message: expect.stringContaining("SidecarService/GetInputs is not served on this port"),
    });
    const connectStream = await fetch(`${server.url}${sidecar}`, {
      method: "POST",
      headers: { "content-type": "application/connect+json" },
      body: new Uint8Array(5),
    });
    const end = Buffer.from(await connectStream.arrayBuffer());
    expect(end[0]).toBe(2);
    expect(JSON.parse(end.subarray(5).toString())).toMatchObject({ error: { code: "unimplemented" } });
  });

  it("leaves plain-HTTP paths alone", async () => {
    const plain = await fetch(`${server.url}/media/ws/none`);
    expect(plain.headers.get("grpc-status")).toBeNull();
  });
});
