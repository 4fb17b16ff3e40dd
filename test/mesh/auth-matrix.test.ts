import { create, getOption, type DescMethod, type DescMethodStreaming, type DescMethodUnary } from "@bufbuild/protobuf";
import { Code, ConnectError, type Transport } from "@connectrpc/connect";
import { createConnectTransport } from "@connectrpc/connect-node";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { required_permission } from "../../gen/mentatlab/v1/options_pb.js";
import { OrchestratorService } from "../../gen/mentatlab/v1/orchestrator_pb.js";
import { AgentRegistryService } from "../../gen/mentatlab/v1/registry_pb.js";
import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { startEmbedded, type EmbeddedMesh } from "../../services/mesh/embedded.js";
import { type Caller, keyEntries, keys } from "./support/callers.js";

// The roles as the README defines them (plus agent:view for both, as the README explains). Written out
// here, not imported, so the test checks the server against the design rather than against itself.
const granted: Record<Exclude<Caller, "none">, readonly string[]> = {
  producer: ["storage:upload", "stream:create", "agent:execute_multimodal", "agent:view"],
  consumer: ["storage:download", "stream:subscribe", "flow:view_results", "agent:view"],
  admin: [
    "storage:upload",
    "storage:download",
    "storage:hold",
    "stream:create",
    "stream:subscribe",
    "agent:register",
    "agent:view",
    "agent:execute_multimodal",
    "flow:view_results",
  ],
};

const methods: DescMethod[] = [StorageService, StreamService, AgentRegistryService, OrchestratorService].flatMap((service) => service.methods);

let mesh: EmbeddedMesh;
let dataDir: string;
let transport: Transport;

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "auth-matrix-"));
  mesh = await startEmbedded({
    port: 0,
    dataDir,
    env: {
      PATH: process.env.PATH,
      MENTATLAB_API_KEYS: keyEntries.join(","),
    },
  });
  transport = createConnectTransport({ baseUrl: mesh.url, httpVersion: "2" });
});

afterAll(async () => {
  await mesh?.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** Calls `method` with an empty request as `caller`; the error code, or undefined when it succeeded. */
async function codeOf(method: DescMethod, caller: Caller): Promise<{ code: Code | undefined; message: string }> {
  const header = new Headers(caller === "none" ? {} : { authorization: `Bearer ${keys[caller]}` });
  const empty = create(method.input);
  // Streams that are allowed would stay open (WatchStreams, Subscribe): authorisation is decided before a
  // handler runs, so a short deadline is enough to tell "let through" from "refused".
  const signal = AbortSignal.timeout(1500);
  try {
    if (method.methodKind === "unary") {
      await transport.unary(method as DescMethodUnary, signal, undefined, header, empty, undefined);
    } else {
      const input = method.methodKind === "server_streaming" ? [empty] : [];
      const response = await transport.stream(method as DescMethodStreaming, signal, undefined, header, toAsync(input), undefined);
      for await (const _ of response.message) break;
    }
    return { code: undefined, message: "" };
  } catch (error) {
    const connectError = ConnectError.from(error);
    return { code: connectError.code, message: connectError.rawMessage };
  }
}

async function* toAsync<T>(items: T[]): AsyncIterable<T> {
  yield* items;
}

describe("every RPC × every caller", () => {
  it("covers every method of every service the mesh serves", () => {
    // 14 storage + 8 stream + 4 registry + 8 orchestrator. The SidecarService is pod-local and guarded by
    // the sidecar's own token (agent-sidecar/sidecar-auth.ts).
    expect(methods.length).toBe(34);
  });

  for (const method of methods) {
    const permission = getOption(method, required_permission);
    describe(`${method.parent.typeName}/${method.name} (${permission})`, () => {
      it("without a key → UNAUTHENTICATED", async () => {
        expect((await codeOf(method, "none")).code).toBe(Code.Unauthenticated);
      });
      for (const caller of ["consumer", "producer", "admin"] as const) {
        const allowed = granted[caller].includes(permission);
        it(`${caller} → ${allowed ? "let through" : "PERMISSION_DENIED naming the permission"}`, async () => {
          const { code, message } = await codeOf(method, caller);
          if (allowed) {
            expect([Code.Unauthenticated, Code.PermissionDenied]).not.toContain(code);
          } else {
            expect(code).toBe(Code.PermissionDenied);
            expect(message).toContain(`"${permission}"`);
          }
        });
      }
    });
  }
});
