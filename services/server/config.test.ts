import { describe, expect, it } from "vitest";
import { readServerConfig, serverDefaults } from "./config.js";

describe("readServerConfig", () => {
  it("applies the documented defaults to an empty environment", () => {
    expect(readServerConfig({})).toEqual({
      host: "127.0.0.1",
      port: 8080,
      corsAllowedOrigins: [],
      readMaxBytes: serverDefaults.readMaxBytes,
      writeMaxBytes: serverDefaults.writeMaxBytes,
      maxRequestBodyBytes: serverDefaults.maxRequestBodyBytes,
      shutdownGraceMs: 10_000,
      staticDir: undefined,
    });
  });

  it("reads every variable", () => {
    const config = readServerConfig({
      MENTATLAB_HOST: "0.0.0.0",
      PORT: "0",
      MENTATLAB_CORS_ORIGINS: " http://a.example , http://b.example ,",
      MENTATLAB_READ_MAX_BYTES: "1024",
      MENTATLAB_WRITE_MAX_BYTES: "2048",
      MENTATLAB_MAX_REQUEST_BODY_BYTES: "4096",
      MENTATLAB_SHUTDOWN_GRACE_MS: "500",
      MENTATLAB_WEB_DIR: "/srv/ui",
    });
    expect(config).toEqual({
      host: "0.0.0.0",
      port: 0,
      corsAllowedOrigins: ["http://a.example", "http://b.example"],
      readMaxBytes: 1024,
      writeMaxBytes: 2048,
      maxRequestBodyBytes: 4096,
      shutdownGraceMs: 500,
      staticDir: "/srv/ui",
    });
  });

  it.each([
    ["PORT", "http", "a port number (0-65535)"],
    ["PORT", "70000", "a port number (0-65535)"],
    ["MENTATLAB_READ_MAX_BYTES", "0", "an integer from 1 to 4294967295"],
    ["MENTATLAB_SHUTDOWN_GRACE_MS", "1.5", "an integer from 0 to 3600000"],
  ])("rejects %s=%s naming the variable and the range", (name, value, allowed) => {
    expect(() => readServerConfig({ [name]: value })).toThrow(`${name} must be ${allowed}, not "${value}"`);
  });
});
