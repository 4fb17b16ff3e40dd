import { createClient, type Transport } from "@connectrpc/connect";
import { createConnectTransport, createGrpcTransport } from "@connectrpc/connect-node";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { startServer, type RunningServer } from "./server.js";
import { mountTransportFixture } from "./testing.js";

let server: RunningServer;
beforeAll(async () => {
  server = await startServer({ port: 0, routes: mountTransportFixture, uncompressedServices: [StorageService.typeName] });
});
afterAll(() => server.close());

const transports: Record<string, { make: (baseUrl: string) => Transport; encodingHeader: string }> = {
  gRPC: { make: (baseUrl) => createGrpcTransport({ baseUrl }), encodingHeader: "grpc-encoding" },
  "Connect streaming": { make: (baseUrl) => createConnectTransport({ baseUrl, httpVersion: "2" }), encodingHeader: "connect-content-encoding" },
};

describe.each(Object.entries(transports))("compression over %s", (_name, { make, encodingHeader }) => {
  it("gzips a large message of a JSON/text service", async () => {
    let encoding: string | null = null;
    const registry = createClient(AgentRegistryService, make(server.url));
    await registry.validateManifest(
      { source: { source: { case: "text", value: "id: x\n".repeat(2_000) } } },
      { onHeader: (header) => (encoding = header.get(encodingHeader) ?? header.get("content-encoding")) },
    );
    expect(encoding).toBe("gzip");
  });

  it("never compresses a media service, even highly compressible chunks", async () => {
    let encoding: string | null = "unset";
    let bytes = 0;
    const storage = createClient(StorageService, make(server.url));
    for await (const response of storage.download(
      { refId: "zeros", length: 1_000_000n, chunkBytes: 65_536 },
      { onHeader: (header) => (encoding = header.get(encodingHeader)) },
    )) {
      if (response.part.case === "chunk") bytes += response.part.value.data.length;
    }
    expect(bytes).toBe(1_000_000);
    expect(encoding === null || encoding === "identity").toBe(true);
  });
});

describe("compression over the Connect unary protocol", () => {
  it("answers Content-Encoding gzip for JSON when the client accepts it", async () => {
    const response = await fetch(`${server.url}/mentatlab.v1.AgentRegistryService/ValidateManifest`, {
      method: "POST",
      headers: { "content-type": "application/json", "accept-encoding": "gzip" },
      body: JSON.stringify({ source: { text: "a".repeat(5_000) } }),
    });
    expect(response.headers.get("content-encoding")).toBe("gzip");
    expect((await response.json()).violations[0].message).toHaveLength("fixture echoes: ".length + 5_000);
  });
});
