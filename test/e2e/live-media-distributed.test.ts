import { describeLiveMedia } from "./live-media.js";
import { startDistributedMesh } from "./support/distributed-mesh.js";

describeLiveMedia("distributed processes with Redis and the S3 server", (extraEnv) =>
  startDistributedMesh("mlk_e2e_live_distributed_0123456789", { extraEnv }),
);
