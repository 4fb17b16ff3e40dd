import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { expect } from "vitest";
import { Health, HealthCheckResponse_ServingStatus as Status } from "../../gen/grpc/health/v1/health_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { expectedUsage, type InteropTarget } from "./target.js";

/** Sends `authorization` with every call. */
export function withAuthorization(authorization: string): Interceptor {
  return (next) => (request) => {
    request.header.set("authorization", authorization);
    return next(request);
  };
}

/** Health.Check (unary) and the first answer of Health.Watch (server streaming) say SERVING. */
export async function expectHealthServing(transport: Transport): Promise<void> {
  const health = createClient(Health, transport);
  expect((await health.check({ service: "" })).status).toBe(Status.SERVING);
  const controller = new AbortController();
  for await (const response of health.watch({ service: StorageService.typeName }, { signal: controller.signal })) {
    expect(response.status).toBe(Status.SERVING);
    break;
  }
  controller.abort();
}

/** GetUsage (unary) answers the default limits and Download (server streaming) the target's object, sha256 included. */
export async function expectUsageAndDownload(transport: Transport, target: InteropTarget): Promise<void> {
  const storage = createClient(StorageService, transport);
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
}
