import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import type { StreamEvent, SubscribeRequest } from "../../gen/mentatlab/v1/stream_pb.js";
import type { Principal } from "../shared/principal.js";
import { isTextual } from "./chunking.js";
import { countDelivery, type Feed, openFeed } from "./feed.js";
import type { StreamMetrics } from "./metrics.js";
import type { StreamStore } from "./stream-store.js";
import { gzipTextEvent } from "./text-encoding.js";

/** One Subscribe call's events, as its caller gets them; shared by the Connect and the encoded path. */
export interface Subscription {
  readonly feed: Feed;
  /** The caller asked for gzip'd text and the stream is textual. */
  readonly gzip: boolean;
  /** The event as this subscriber receives it, counted in the delivery metrics. */
  deliver(event: StreamEvent): StreamEvent;
}

export async function openSubscription(
  store: StreamStore,
  metrics: StreamMetrics,
  principal: Principal,
  request: SubscribeRequest,
  signal: AbortSignal,
): Promise<Subscription> {
  const feed = await openFeed(store, { workspace: principal.workspace, id: request.streamId }, request.afterSeq, signal);
  const gzip = request.acceptGzip && isTextual(feed.stream.ref?.payloadType ?? PinType.BINARY);
  return {
    feed,
    gzip,
    deliver(event) {
      countDelivery(metrics, event, feed.subscribedAtMs);
      return gzip ? gzipTextEvent(event) : event;
    },
  };
}
