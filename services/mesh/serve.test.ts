import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { readServerConfig } from "../server/config.js";
import type { MeshModule } from "../server/mesh-module.js";
import type { HttpRoute } from "../shared/http-route.js";
import { createTelemetry } from "../shared/telemetry/index.js";
import { meshSecurity } from "./security.js";
import { serveMeshModules } from "./serve.js";

const apiKey = "mlk_mesh_modules_0123456789";
let dataDir: string;
beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), "mesh-modules-"));
});
afterEach(async () => {
  await rm(dataDir, { recursive: true, force: true });
});

/** A module serving one plain-HTTP path that answers its name, noting what the mesh did with it. */
function recordingModule(name: string, journal: string[]): MeshModule {
  const route: HttpRoute = {
    method: "GET",
    pathPrefix: `/${name}`,
    handle: async () => new Response(name),
  };
  return {
    mount: () => journal.push(`mount ${name}`),
    httpRoutes: [route],
    encodedStreams: [],
    registerMetrics: () => journal.push(`metrics ${name}`),
    close: async () => {
      journal.push(`close ${name}`);
    },
  };
}

describe("serveMeshModules", () => {
  it("serves every module on one port, binds each one's metrics once, and closes them callees last", async () => {
    const env = {
      PORT: "0",
      MENTATLAB_HOST: "127.0.0.1",
      MENTATLAB_DATA_DIR: dataDir,
      MENTATLAB_API_KEYS: `${apiKey}=ann@ws:admin`,
      MENTATLAB_SHUTDOWN_GRACE_MS: "200",
    };
    const security = meshSecurity(env, { allowDevKey: false, process: "test" });
    const journal: string[] = [];
    const mesh = await serveMeshModules(readServerConfig(env), security, createTelemetry(env), [
      recordingModule("data", journal),
      recordingModule("runs", journal),
    ]);
    try {
      const answers = await Promise.all(
        ["data", "runs"].map(async (name) => (await fetch(`${mesh.url}/${name}`, { headers: { authorization: `Bearer ${apiKey}` } })).text()),
      );
      expect(answers).toEqual(["data", "runs"]);
      expect(journal.filter((entry) => entry.startsWith("metrics"))).toEqual(["metrics data", "metrics runs"]);
      expect(journal).toContain("mount data");
      expect(journal).toContain("mount runs");
    } finally {
      await mesh.close();
    }
    expect(journal.filter((entry) => entry.startsWith("close"))).toEqual(["close runs", "close data"]);
  });
});
