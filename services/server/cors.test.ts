import { connect } from "node:http2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startServer, type RunningServer } from "./server.js";
import { mountTransportFixture } from "./testing.js";

const allowed = "http://ui.example:3000";
let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, routes: mountTransportFixture, corsAllowedOrigins: [allowed] });
});
afterAll(() => server.close());

const rpcPath = "/mentatlab.v1.AgentRegistryService/ValidateManifest";
const preflightHeaders = {
  origin: allowed,
  "access-control-request-method": "POST",
  "access-control-request-headers": "content-type,connect-protocol-version,authorization,x-grpc-web",
};

/** Sends one HTTP/2 request with prior knowledge and returns the response headers. */
async function http2Request(url: string, headers: Record<string, string>): Promise<Record<string, unknown>> {
  const session = connect(url);
  try {
    const stream = session.request(headers);
    stream.end();
    const response = await new Promise<Record<string, unknown>>((resolve, reject) => {
      stream.once("response", resolve);
      stream.once("error", reject);
    });
    stream.resume();
    return response;
  } finally {
    session.close();
  }
}

describe("CORS", () => {
  it("answers a preflight over HTTP/1.1 with the methods and headers Connect and gRPC-web need", async () => {
    const response = await fetch(`${server.url}${rpcPath}`, { method: "OPTIONS", headers: preflightHeaders });
    expect(response.status).toBe(204);
    expect(response.headers.get("access-control-allow-origin")).toBe(allowed);
    const allowHeaders = response.headers.get("access-control-allow-headers")?.toLowerCase().split(", ") ?? [];
    expect(allowHeaders).toEqual(expect.arrayContaining(["content-type", "connect-protocol-version", "x-grpc-web", "authorization", "grpc-timeout"]));
    expect(response.headers.get("access-control-allow-methods")).toContain("POST");
    expect(response.headers.get("access-control-allow-methods")).toContain("GET");
  });

  it("answers a preflight over HTTP/2", async () => {
    const headers = await http2Request(server.url, { ":method": "OPTIONS", ":path": rpcPath, ...preflightHeaders });
    expect(headers[":status"]).toBe(204);
    expect(headers["access-control-allow-origin"]).toBe(allowed);
  });

  it("exposes the gRPC-web and Connect response headers on an actual call", async () => {
    const response = await fetch(`${server.url}${rpcPath}`, {
      method: "POST",
      headers: { origin: allowed, "content-type": "application/json", "connect-protocol-version": "1" },
      body: JSON.stringify({ source: { text: "" } }),
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("access-control-allow-origin")).toBe(allowed);
    expect(response.headers.get("vary")).toBe("Origin");
    const exposed = response.headers.get("access-control-expose-headers")?.toLowerCase().split(", ") ?? [];
    expect(exposed).toEqual(expect.arrayContaining(["grpc-status", "grpc-message", "grpc-status-details-bin"]));
    expect(await response.json()).toMatchObject({ violations: [{ rule: "fixture.empty" }] });
  });

  it("refuses other origins with a message saying how to allow them", async () => {
    const response = await fetch(`${server.url}${rpcPath}`, {
      method: "OPTIONS",
      headers: { ...preflightHeaders, origin: "http://evil.example" },
    });
    expect(response.status).toBe(403);
    expect(response.headers.get("access-control-allow-origin")).toBeNull();
    expect(await response.text()).toContain("http://evil.example is not allowed");
  });

  it("lets the web UI served from the same origin call without CORS configuration", async () => {
    const sameOrigin = await startServer({ port: 0, routes: mountTransportFixture });
    try {
      const response = await fetch(`${sameOrigin.url}${rpcPath}`, {
        method: "POST",
        headers: { origin: sameOrigin.url, "content-type": "application/json" },
        body: "{}",
      });
      expect(response.status).toBe(200);
      const foreign = await fetch(`${sameOrigin.url}${rpcPath}`, {
        method: "POST",
        headers: { origin: allowed, "content-type": "application/json" },
        body: "{}",
      });
      expect(foreign.status).toBe(403);
    } finally {
      await sameOrigin.close();
    }
  });

  it("allows any origin with *", async () => {
    const open = await startServer({ port: 0, routes: mountTransportFixture, corsAllowedOrigins: ["*"] });
    try {
      const response = await fetch(`${open.url}${rpcPath}`, { method: "OPTIONS", headers: { ...preflightHeaders, origin: "http://a.example" } });
      expect(response.status).toBe(204);
      expect(response.headers.get("access-control-allow-origin")).toBe("http://a.example");
    } finally {
      await open.close();
    }
  });
});
