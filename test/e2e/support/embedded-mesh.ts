import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbedded } from "../../../services/mesh/embedded.js";
import type { MeshUnderTest } from "./clients.js";

export interface EmbeddedMeshUnderTest extends MeshUnderTest {
  /** A folder for the test's own files, removed with the mesh. */
  readonly scratchDir: string;
}

/**
 * The embedded default (`npm start`) in a fresh temporary folder, configured only as its users do,
 * with `apiKey` as `user` (`USER@WORKSPACE`) in the admin role, plus a short shutdown grace to keep
 * the suite fast. `extraEnv` adds to that environment (e.g. MENTATLAB_WEB_DIR for the web UI).
 */
export async function startEmbeddedMesh(
  tempPrefix: string,
  apiKey: string,
  user: string,
  extraEnv: Readonly<Record<string, string>> = {},
): Promise<EmbeddedMeshUnderTest> {
  const scratchDir = await mkdtemp(join(tmpdir(), tempPrefix));
  const removeScratch = () => rm(scratchDir, { recursive: true, force: true });
  const mesh = await startEmbedded({
    port: 0,
    dataDir: join(scratchDir, "data"),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, MENTATLAB_API_KEYS: `${apiKey}=${user}:admin`, MENTATLAB_SHUTDOWN_GRACE_MS: "500", ...extraEnv },
  }).catch(async (error: unknown) => {
    await removeScratch();
    throw error;
  });
  return {
    url: mesh.url,
    apiKey,
    scratchDir,
    async close() {
      await mesh.close();
      await removeScratch();
    },
  };
}
