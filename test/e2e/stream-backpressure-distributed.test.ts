import { backpressureEnv, describeStreamBackpressure } from "./stream-backpressure.js";
import { startDistributedMesh } from "./support/distributed-mesh.js";

// Redis holds the consumers' positions; the gateway relays the reader's sidecar with flow control.
describeStreamBackpressure("distributed, Redis", () => startDistributedMesh("mlk_e2e_backpressure_dist_0123456789", { extraEnv: backpressureEnv }));
