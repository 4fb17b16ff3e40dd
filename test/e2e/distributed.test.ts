import { startDistributedMesh } from "./support/distributed-mesh.js";
import { describeSeedDiagrams } from "./seed-diagrams.js";

describeSeedDiagrams("distributed processes with Redis and the S3 server", () => startDistributedMesh("mlk_e2e_distributed_0123456789"));
