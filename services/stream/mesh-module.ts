import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import type { MeshModule } from "../server/mesh-module.js";
import type { StreamConfig } from "./config.js";
import { createStreams } from "./index.js";
import { registerStreamMetrics } from "./metrics-instruments.js";

/** The stream service as a mesh process serves it: StreamService, the SSE view and encoded Subscribe. */
export async function streamModule(config: StreamConfig): Promise<MeshModule> {
  const streams = await createStreams(config);
  return {
    mount: (router) => router.service(StreamService, streams.impl),
    httpRoutes: streams.routes,
    encodedStreams: streams.encodedStreams,
    registerMetrics: (meter) => registerStreamMetrics(meter, streams.metrics),
    close: () => streams.close(),
  };
}
