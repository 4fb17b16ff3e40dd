import { type StreamEvent, StreamEventSchema, StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { type EncodedServerStream, envelopeSegments } from "../server/fast-path/index.js";
import { principalOf } from "../shared/principal.js";
import type { DeliveryMeter } from "./delivery-meter.js";
import type { StreamMetrics } from "./metrics.js";
import type { StreamStore } from "./stream-store.js";
import { openSubscription } from "./subscription.js";

// Subscribers of a stream share its event objects, so each event is encoded once for all of them;
// gzip'd text differs, hence a second cache keyed by the original event.
// An envelope is kept as the buffers it is made of: a video chunk stays the producer's own buffer.
const plainEnvelopes = new WeakMap<StreamEvent, Uint8Array[]>();
const gzipEnvelopes = new WeakMap<StreamEvent, Uint8Array[]>();

/**
 * Subscribe on the server's encoded fast path: the same subscription as the Connect handler, written
 * as cached envelopes, so fan-out costs a memory copy per subscriber instead of an encode.
 */
export function encodedSubscribe(
  store: StreamStore,
  metrics: StreamMetrics,
  deliveries: DeliveryMeter,
): EncodedServerStream<typeof StreamService.method.subscribe> {
  return {
    method: StreamService.method.subscribe,
    async serve(request, context, out) {
      const subscription = await openSubscription(store, metrics, deliveries, principalOf(context), request, context.signal);
      const cache = subscription.gzip ? gzipEnvelopes : plainEnvelopes;
      try {
        for await (const event of subscription.feed.events) {
          let encoded = cache.get(event);
          const delivered = subscription.deliver(event);
          if (!encoded) cache.set(event, (encoded = envelopeSegments(StreamEventSchema, delivered)));
          if (!out.write(encoded)) await out.ready();
        }
      } finally {
        subscription.close();
      }
    },
  };
}
