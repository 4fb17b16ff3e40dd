import { describeSeedDiagrams } from "./seed-diagrams.js";
import { startEmbeddedMesh } from "./support/embedded-mesh.js";

describeSeedDiagrams("the embedded default", () => startEmbeddedMesh("e2e-embedded-", "mlk_e2e_embedded_0123456789", "carol@ws-e2e"));
