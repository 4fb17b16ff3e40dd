import { StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import type { MeshModule } from "../server/mesh-module.js";
import type { StreamConfig } from "./config.js";
import { createStreams } from "./index.js";
import { registerStreamMetrics } from "./metrics-instruments.js";
import { createStreamsInitRoute } from "./streams-init-route.js";
import { StreamTicketSigner } from "./stream-ticket.js";
import type { WebSocketConfig } from "./websocket-config.js";
import { createWebSocketRoute } from "./websocket-route.js";

/** What the WebSocket view needs besides the stream settings: its own settings and the mesh's token secret (tickets). */
export interface StreamModuleOptions {
  readonly websocket: WebSocketConfig;
  readonly tokenSecret: string;
}

/**
 * The stream service as a mesh process serves it: StreamService, the SSE view, encoded Subscribe, and
 * the WebSocket view (`POST /streams/init`, `/streams/{id}/ws`).
 */
export async function streamModule(config: StreamConfig, options: StreamModuleOptions): Promise<MeshModule> {
  const streams = await createStreams(config);
  const tickets = new StreamTicketSigner(options.tokenSecret, options.websocket.ticketSeconds);
  return {
    mount: (router) => router.service(StreamService, streams.impl),
    httpRoutes: [...streams.routes, createStreamsInitRoute(streams.impl, tickets, options.websocket)],
    upgradeRoutes: [createWebSocketRoute(streams.impl, tickets, options.websocket)],
    encodedStreams: streams.encodedStreams,
    registerMetrics: (meter) => registerStreamMetrics(meter, streams.metrics),
    close: () => streams.close(),
  };
}
