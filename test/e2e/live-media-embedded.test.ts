import { describeLiveMedia } from "./live-media.js";
import { startEmbeddedMesh } from "./support/embedded-mesh.js";

describeLiveMedia("the embedded default", (extraEnv) => startEmbeddedMesh("e2e-live-", "mlk_e2e_live_embedded_0123456789", "erin@ws-live", extraEnv));
