import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startEmbedded } from "../../services/mesh/embedded.js";
import { describeSeedDiagrams } from "./seed-diagrams.js";

const apiKey = "mlk_e2e_embedded_0123456789";

describeSeedDiagrams("the embedded default", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "e2e-embedded-"));
  const mesh = await startEmbedded({
    port: 0,
    dataDir,
    // Only what `npm start` users set (an API key), plus a short shutdown grace to keep the suite fast.
    env: { PATH: process.env.PATH, HOME: process.env.HOME, MENTATLAB_API_KEYS: `${apiKey}=carol@ws-e2e:admin`, MENTATLAB_SHUTDOWN_GRACE_MS: "500" },
  });
  return {
    url: mesh.url,
    apiKey,
    async close() {
      await mesh.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
});
