import { createClient, type Interceptor, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcWebTransport } from "@connectrpc/connect-web";
import { Health, HealthCheckResponse_ServingStatus } from "../../../gen/grpc/health/v1/health_pb.js";
import { StorageService } from "../../../gen/mentatlab/v1/storage_pb.js";

/** What the page found out with one transport; read back by the test through `window.interop`. */
export interface TransportReport {
  check?: string;
  watchFirst?: string;
  userLimitBytes?: string;
  sha256?: string;
  text?: string;
  error?: string;
}

declare global {
  interface Window {
    interop?: Record<string, TransportReport>;
  }
}

const params = new URLSearchParams(location.search);
const baseUrl = params.get("target") ?? "";
const authorization = params.get("authorization") ?? "";
const refId = params.get("ref") ?? "";

const withKey: Interceptor = (next) => (request) => {
  request.header.set("authorization", authorization);
  return next(request);
};

async function exercise(transport: Transport): Promise<TransportReport> {
  const report: TransportReport = {};
  try {
    const health = createClient(Health, transport);
    report.check = HealthCheckResponse_ServingStatus[(await health.check({ service: "" })).status];
    const controller = new AbortController();
    for await (const response of health.watch({ service: "" }, { signal: controller.signal })) {
      report.watchFirst = HealthCheckResponse_ServingStatus[response.status];
      break;
    }
    controller.abort();
    const storage = createClient(StorageService, transport);
    report.userLimitBytes = String((await storage.getUsage({})).userLimitBytes);
    let text = "";
    for await (const part of storage.download({ refId })) {
      if (part.part.case === "header") report.sha256 = part.part.value.sha256;
      if (part.part.case === "chunk") text += new TextDecoder().decode(part.part.value.data);
    }
    report.text = text;
  } catch (error) {
    report.error = String(error);
  }
  return report;
}

async function main(): Promise<void> {
  window.interop = {
    connect: await exercise(createConnectTransport({ baseUrl, interceptors: [withKey] })),
    grpcWeb: await exercise(createGrpcWebTransport({ baseUrl, interceptors: [withKey] })),
  };
  document.body.textContent = JSON.stringify(window.interop, null, 2);
}

void main();
