import { describe, expect, it } from "vitest";
import { tracingConfigFromEnv } from "./tracing-config.js";

describe("tracingConfigFromEnv", () => {
  it("is off without an OTLP endpoint", () => {
    expect(tracingConfigFromEnv({}, "gateway")).toBeUndefined();
    expect(tracingConfigFromEnv({ OTEL_SERVICE_NAME: "x", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" }, "gateway")).toBeUndefined();
  });

  it("is on with either the general or the traces endpoint, named after the process", () => {
    expect(tracingConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318" }, "storage")).toEqual({ serviceName: "mentatlab-storage" });
    expect(tracingConfigFromEnv({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://127.0.0.1:4318/v1/traces" }, "gateway")).toEqual({
      serviceName: "mentatlab-gateway",
    });
  });

  it("takes OTEL_SERVICE_NAME over the default", () => {
    const env = { OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SERVICE_NAME: "edge-eu-1" };
    expect(tracingConfigFromEnv(env, "gateway")?.serviceName).toBe("edge-eu-1");
  });

  it("is off when OTEL_SDK_DISABLED is true", () => {
    expect(tracingConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_SDK_DISABLED: "TRUE" }, "gateway")).toBeUndefined();
  });

  it("accepts the three OTLP protocols and rejects anything else, naming the choices", () => {
    for (const protocol of ["http/protobuf", "http/json", "grpc"]) {
      expect(tracingConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_EXPORTER_OTLP_PROTOCOL: protocol }, "x")).toBeDefined();
    }
    expect(() => tracingConfigFromEnv({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://127.0.0.1:4318", OTEL_EXPORTER_OTLP_TRACES_PROTOCOL: "http/jsn" }, "x")).toThrow(
      'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL must be one of http/protobuf, http/json, grpc, not "http/jsn"',
    );
  });
});
