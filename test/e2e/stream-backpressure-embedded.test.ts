import { backpressureEnv, describeStreamBackpressure } from "./stream-backpressure.js";
import { startEmbeddedMesh } from "./support/embedded-mesh.js";

describeStreamBackpressure("embedded default", () => startEmbeddedMesh("e2e-backpressure-", "mlk_e2e_backpressure_0123456789", "dora@ws-e2e", backpressureEnv));
