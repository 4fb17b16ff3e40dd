import { StorageService } from "../../gen/mentatlab/v1/storage_pb.js";
import type { MeshModule } from "../server/mesh-module.js";
import type { StorageConfig } from "./config.js";
import { createStorage } from "./index.js";
import { registerStorageMetrics } from "./metrics-instruments.js";

/** The storage service as a mesh process serves it: StorageService and the plain-HTTP media paths. */
export async function storageModule(config: StorageConfig): Promise<MeshModule> {
  const storage = await createStorage(config);
  return {
    mount: (router) => router.service(StorageService, storage.impl),
    httpRoutes: storage.routes,
    encodedStreams: [],
    registerMetrics: (meter) => registerStorageMetrics(meter, storage.metrics),
    close: () => storage.close(),
  };
}
