import type { Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, it } from "vitest";
import { expectHealthServing, expectUsageAndDownload, withAuthorization } from "./connect-node-calls.js";
import { startInteropTarget, type InteropTarget } from "./target.js";

let target: InteropTarget;
beforeAll(async () => {
  target = await startInteropTarget();
});
afterAll(() => target.close());

const transports: Record<string, () => Transport> = {
  "gRPC (h2c)": () => createGrpcTransport({ baseUrl: target.url, interceptors: [withAuthorization(target.authorization)] }),
  "gRPC-web (HTTP/1.1)": () => createGrpcWebTransport({ baseUrl: target.url, httpVersion: "1.1", interceptors: [withAuthorization(target.authorization)] }),
  "Connect (HTTP/1.1, JSON)": () =>
    createConnectTransport({ baseUrl: target.url, httpVersion: "1.1", interceptors: [withAuthorization(target.authorization)] }),
  "Connect (HTTP/2, binary)": () =>
    createConnectTransport({ baseUrl: target.url, httpVersion: "2", useBinaryFormat: true, interceptors: [withAuthorization(target.authorization)] }),
};

describe.each(Object.entries(transports))("connect-node client, %s", (_name, make) => {
  it("calls Health.Check and Health.Watch", () => expectHealthServing(make()));

  it("calls StorageService.GetUsage (unary) and Download (server streaming) with a key", () => expectUsageAndDownload(make(), target));
});
