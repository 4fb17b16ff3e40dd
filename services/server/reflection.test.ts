import { create, fromBinary } from "@bufbuild/protobuf";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as v1 from "../../gen/grpc/reflection/v1/reflection_pb.js";
import * as v1alpha from "../../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { startServer, type RunningServer } from "./server.js";
import { mountTransportFixture } from "./testing.js";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, routes: mountTransportFixture });
});
afterAll(() => server.close());

type Request = v1.ServerReflectionRequest["messageRequest"];

/** Sends each request on one reflection stream and returns the answers in order. */
async function ask(requests: Request[]): Promise<v1.ServerReflectionResponse["messageResponse"][]> {
  const client = createClient(v1.ServerReflection, createGrpcTransport({ baseUrl: server.url }));
  async function* send() {
    for (const messageRequest of requests) yield create(v1.ServerReflectionRequestSchema, { messageRequest });
  }
  const answers = [];
  for await (const response of client.serverReflectionInfo(send())) answers.push(response.messageResponse);
  return answers;
}

function fileNames(answer: v1.ServerReflectionResponse["messageResponse"] | undefined): string[] {
  if (answer?.case !== "fileDescriptorResponse") throw new Error(`expected files, got ${answer?.case}`);
  return answer.value.fileDescriptorProto.map((bytes) => fromBinary(FileDescriptorProtoSchema, bytes).name);
}

describe("server reflection v1", () => {
  it("lists every served service, health and reflection included", async () => {
    const [answer] = await ask([{ case: "listServices", value: "" }]);
    if (answer?.case !== "listServicesResponse") throw new Error(`unexpected ${answer?.case}`);
    expect(answer.value.service.map((s) => s.name)).toEqual([
      "grpc.health.v1.Health",
      "grpc.reflection.v1.ServerReflection",
      "grpc.reflection.v1alpha.ServerReflection",
      "mentatlab.v1.AgentRegistryService",
      "mentatlab.v1.StorageService",
    ]);
  });

  it("answers a symbol (service, method, nested message) with its file and every transitive import", async () => {
    const [service, method, message] = await ask([
      { case: "fileContainingSymbol", value: "mentatlab.v1.StorageService" },
      { case: "fileContainingSymbol", value: "mentatlab.v1.StorageService.Download" },
      { case: "fileContainingSymbol", value: "mentatlab.v1.DownloadChunk" },
    ]);
    const names = fileNames(service);
    expect(names[0]).toBe("mentatlab/v1/storage.proto");
    expect(names).toEqual(
      expect.arrayContaining([
        "mentatlab/v1/common.proto",
        "mentatlab/v1/options.proto",
        "buf/validate/validate.proto",
        "google/protobuf/descriptor.proto",
        "google/protobuf/timestamp.proto",
      ]),
    );
    expect(new Set(names).size).toBe(names.length);
    expect(fileNames(method)[0]).toBe("mentatlab/v1/storage.proto");
    expect(fileNames(message)[0]).toBe("mentatlab/v1/storage.proto");
  });

  it("answers a file by name and reports unknown names as NOT_FOUND", async () => {
    const [byName, unknownFile, unknownSymbol] = await ask([
      { case: "fileByFilename", value: "grpc/health/v1/health.proto" },
      { case: "fileByFilename", value: "nope.proto" },
      { case: "fileContainingSymbol", value: "mentatlab.v1.Nope" },
    ]);
    expect(fileNames(byName)).toEqual(["grpc/health/v1/health.proto"]);
    expect(unknownFile).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
    expect(unknownSymbol).toMatchObject({ case: "errorResponse", value: { errorCode: 5 } });
  });

  it("finds extensions: our method option extends MethodOptions", async () => {
    const [numbers] = await ask([{ case: "allExtensionNumbersOfType", value: "google.protobuf.MethodOptions" }]);
    if (numbers?.case !== "allExtensionNumbersResponse") throw new Error(`unexpected ${numbers?.case}`);
    expect(numbers.value.extensionNumber.length).toBeGreaterThan(0);
    const [file] = await ask([
      {
        case: "fileContainingExtension",
        value: create(v1.ExtensionRequestSchema, {
          containingType: "google.protobuf.MethodOptions",
          extensionNumber: numbers.value.extensionNumber[0] ?? 0,
        }),
      },
    ]);
    expect(fileNames(file).length).toBeGreaterThan(0);
  });
});

describe("server reflection v1alpha", () => {
  it("answers the same questions under the old package name", async () => {
    const client = createClient(v1alpha.ServerReflection, createGrpcTransport({ baseUrl: server.url }));
    async function* send() {
      yield create(v1alpha.ServerReflectionRequestSchema, { messageRequest: { case: "listServices", value: "" } });
      yield create(v1alpha.ServerReflectionRequestSchema, {
        messageRequest: { case: "fileContainingSymbol", value: "mentatlab.v1.AgentRegistryService" },
      });
    }
    const answers = [];
    for await (const response of client.serverReflectionInfo(send())) answers.push(response.messageResponse);
    expect(answers[0]?.case).toBe("listServicesResponse");
    expect(answers[1]?.case).toBe("fileDescriptorResponse");
  });
});
