import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { expectedUsage, startInteropTarget, type InteropTarget } from "./target.js";

let target: InteropTarget;
beforeAll(async () => {
  target = await startInteropTarget();
});
afterAll(() => target.close());

const withKey: Interceptor = (next) => (request) => {
  request.header.set("authorization", target.authorization);
  return next(request);
};

const transports: Record<string, () => Transport> = {
  "gRPC (h2c)": () => createGrpcTransport({ baseUrl: target.url, interceptors: [withKey] }),
  "gRPC-web (HTTP/1.1)": () => createGrpcWebTransport({ baseUrl: target.url, httpVersion: "1.1", interceptors: [withKey] }),
  "Connect (HTTP/1.1, JSON)": () => createConnectTransport({ baseUrl: target.url, httpVersion: "1.1", interceptors: [withKey] }),
  "Connect (HTTP/2, binary)": () => createConnectTransport({ baseUrl: target.url, httpVersion: "2", useBinaryFormat: true, interceptors: [withKey] }),
};

describe.each(Object.entries(transports))("connect-node client, %s", (_name, make) => {
  it("calls Health.Check and Health.Watch", async () => {
    const health = createClient(Health, make());
    expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
    const controller = new AbortController();
    for await (const response of health.watch({ service: StorageService.typeName }, { signal: controller.signal })) {
      expect(response.status).toBe(Status.SERVING);
      break;
    }
    controller.abort();
  });

  it("calls StorageService.GetUsage (unary) and Download (server streaming) with a key", async () => {
    const storage = createClient(StorageService, make());
    const usage = await storage.getUsage({});
    expect({ userLimitBytes: String(usage.userLimitBytes), workspaceLimitBytes: String(usage.workspaceLimitBytes) }).toEqual(expectedUsage);
    let text = "";
    let header: string | undefined;
    for await (const response of storage.download({ refId: target.object.refId })) {
      if (response.part.case === "header") header = response.part.value.sha256;
      if (response.part.case === "chunk") text += new TextDecoder().decode(response.part.value.data);
    }
    expect(header).toBe(target.object.sha256);
    expect(text).toBe(target.object.text);
  });
});
