import type { Interceptor } from "@connectrpc/connect";
import { context, propagation, type TextMapSetter } from "@opentelemetry/api";

const headerSetter: TextMapSetter<Headers> = {
  set: (headers, key, value) => headers.set(key, value),
};

/**
 * Writes the active trace context (`traceparent`, `tracestate`) into each outgoing request, so the peer's
 * span becomes a child of the span of the handler making the call. It replaces any trace header the
 * caller copied from its own incoming request, which would skip this process's span in the trace.
 */
export function clientTracingInterceptor(): Interceptor {
  return (next) => (req) => {
    propagation.inject(context.active(), req.header, headerSetter);
    return next(req);
  };
}
