import { PinType } from "../../gen/mentatlab/v1/common_pb.js";
import type { StreamEvent, SubscribeRequest } from "../../gen/mentatlab/v1/stream_pb.js";
import type { Principal } from "../shared/principal.js";
import { isTextual } from "./chunking.js";
import { timestampMs } from "@bufbuild/protobuf/wkt";
import { type DeliveryMeter, subscriberClass } from "./delivery-meter.js";
import { ConsumerProgress } from "./consumer-progress.js";
import { countDelivery, type Feed, openFeed } from "./feed.js";
import { consumerOf } from "./flow-control.js";
import type { StreamMetrics } from "./metrics.js";
import type { StreamStore } from "./stream-store.js";
import { gzipTextEvent } from "./text-encoding.js";

/** One Subscribe call's events, as its caller gets them; shared by the Connect and the encoded path. */
export interface Subscription {
  readonly feed: Feed;
  /** The caller asked for gzip'd text and the stream is textual. */
  readonly gzip: boolean;
  /** The event as this subscriber receives it, counted in the delivery metrics and the bitrate advice. */
  deliver(event: StreamEvent): StreamEvent;
  /** The call ended: this subscriber no longer counts for its producer's bitrate advice. */
  close(): void;
}

export async function openSubscription(
  store: StreamStore,
  metrics: StreamMetrics,
  deliveries: DeliveryMeter,
  principal: Principal,
  request: SubscribeRequest,
  signal: AbortSignal,
): Promise<Subscription> {
  const key = { workspace: principal.workspace, id: request.streamId };
  // A downstream agent its producer is held back for (or fails for) is not cut off for lagging.
  const feed = await openFeed(store, key, request.afterSeq, signal, (stream) => !consumerOf(stream, principal.run));
  const gzip = request.acceptGzip && isTextual(feed.stream.ref?.payloadType ?? PinType.BINARY);
  const delivery = deliveries.subscriber(key, subscriberClass(principal), feed.subscribedAtMs);
  const consumer = feed.complete ? undefined : consumerOf(feed.stream, principal.run);
  const progress = consumer ? new ConsumerProgress(store, key, consumer.nodeId) : undefined;
  return {
    feed,
    gzip,
    deliver(event) {
      countDelivery(metrics, event, feed.subscribedAtMs);
      if (event.event.case === "data") delivery.deliveredData(event.event.value.data.byteLength, event.time ? timestampMs(event.time) : 0, Date.now());
      progress?.delivered(event);
      return gzip ? gzipTextEvent(event) : event;
    },
    close() {
      delivery.close();
      progress?.detached();
    },
  };
}
