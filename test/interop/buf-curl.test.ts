import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health } from "../../gen/grpc/health/v1/health_pb.js";
import { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { bufCurl, expectBufCurlDownload, expectBufCurlUnauthenticated, firstMessage, messages } from "./buf-curl-support.js";
import { expectedUsage, startInteropTarget, type InteropTarget } from "./target.js";

let target: InteropTarget;
beforeAll(async () => {
  target = await startInteropTarget();
});
afterAll(() => target.close());

describe("buf curl", () => {
  it("lists every method through reflection, with no schema file", async () => {
    const listed = (await bufCurl(["--protocol", "grpc", "--http2-prior-knowledge", target.url, "--list-methods"])).trim().split("\n");
    const expected = [Health, StorageService, StreamService, AgentRegistryService, OrchestratorService].flatMap((service) =>
      service.methods.map((method) => `${service.typeName}/${method.name}`),
    );
    expect(listed).toEqual(expect.arrayContaining(expected));
  });

  it("calls Health.Check with a JSON body over h2c, and Health.Watch over gRPC-web", async () => {
    const check = await bufCurl(["--http2-prior-knowledge", "-d", "{}", `${target.url}/grpc.health.v1.Health/Check`]);
    expect(messages(check)).toEqual([{ status: "SERVING" }]);
    const watched = await firstMessage(["--protocol", "grpcweb", "-d", '{"service":""}', `${target.url}/grpc.health.v1.Health/Watch`]);
    expect(watched).toEqual({ status: "SERVING" });
  });

  it("calls StorageService.GetUsage with an Authorization header (gRPC) and Download (Connect, HTTP/1.1)", async () => {
    const usage = await bufCurl([
      "--protocol",
      "grpc",
      "--http2-prior-knowledge",
      "-H",
      `Authorization: ${target.authorization}`,
      "-d",
      "{}",
      `${target.url}/mentatlab.v1.StorageService/GetUsage`,
    ]);
    expect(messages(usage)).toEqual([expect.objectContaining(expectedUsage)]);
    await expectBufCurlDownload(target, []);
  });

  it("gets UNAUTHENTICATED without a key", () => expectBufCurlUnauthenticated(target, []));
});
