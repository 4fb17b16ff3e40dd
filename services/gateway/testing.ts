import { mkdtempSync, rmSync } from "node:fs";
import type { ClientHttp2Stream, OutgoingHttpHeaders } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach } from "vitest";
import { startGateway, startServiceProcess, type MeshProcess } from "../mesh/distributed.js";
import { UpstreamSession } from "./upstream-session.js";

/** API keys of the gateway tests: alice and bob share workspace ws-a, olga has ws-b. */
export const keys: Readonly<Record<"alice" | "bob" | "olga", string>> = {
  alice: "key-alice-0123456789",
  bob: "key-bob-0123456789",
  olga: "key-olga-0123456789",
};

/** A stream process and a gateway in front of it, started in this process the way `mentatlab serve` starts them. */
export interface GatewayMesh {
  readonly stream: MeshProcess;
  gateway: MeshProcess;
  readonly env: Record<string, string>;
}

/** Closes what a test started, last first, after each test of the file that calls this. */
export function cleanupsAfterEach(): (cleanup: () => Promise<void> | void) => void {
  const cleanups: (() => Promise<void> | void)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return (cleanup) => cleanups.push(cleanup);
}

/** Starts a stream process and a gateway (`extra` adds to their environment); `onCleanup` stops them. */
export async function startGatewayMesh(onCleanup: (cleanup: () => Promise<void> | void) => void, extra: Record<string, string> = {}): Promise<GatewayMesh> {
  const dataDir = mkdtempSync(join(tmpdir(), "gateway-test-"));
  onCleanup(() => rmSync(dataDir, { recursive: true, force: true }));
  const env: Record<string, string> = {
    MENTATLAB_DATA_DIR: dataDir,
    MENTATLAB_API_KEYS: `${keys.alice}=alice@ws-a:admin,${keys.bob}=bob@ws-a:admin,${keys.olga}=olga@ws-b:admin`,
    MENTATLAB_TOKEN_SECRET: "gateway-test-token-secret-0123456789",
    MENTATLAB_PRESIGN_SECRET: "gateway-test-presign-secret-0123456789",
    MENTATLAB_SHUTDOWN_GRACE_MS: "200",
    MENTATLAB_HOST: "127.0.0.1",
    PORT: "0",
    ...extra,
  };
  const stream = await startServiceProcess("stream", env);
  onCleanup(() => stream.close());
  const peers = { ...env, MENTATLAB_STREAM_URL: stream.url, MENTATLAB_STORAGE_URL: "http://127.0.0.1:9", MENTATLAB_ORCHESTRATOR_URL: "http://127.0.0.1:9" };
  const mesh: GatewayMesh = { stream, gateway: await startGateway(peers), env: peers };
  onCleanup(() => mesh.gateway.close());
  return mesh;
}

/** Keeps every upstream call it starts, to count them and see how each ended. */
export class RecordingSession extends UpstreamSession {
  readonly calls: ClientHttp2Stream[] = [];

  override request(headers: OutgoingHttpHeaders): ClientHttp2Stream {
    const call = super.request(headers);
    this.calls.push(call);
    return call;
  }
}
