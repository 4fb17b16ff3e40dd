import type { Interceptor } from "@connectrpc/connect";
import { context, propagation, type TextMapSetter } from "@opentelemetry/api";

const headerSetter: TextMapSetter<Headers> = {
  set: (headers, key, value) => headers.set(key, value),
};

const recordSetter: TextMapSetter<Record<string, string>> = {
  set: (headers, key, value) => {
    headers[key] = value;
  },
};

/**
 * The same for a request made without a Connect client (the gateway's raw Subscribe relay). Without an
 * active span (tracing off) it leaves the headers as they are, so a received `traceparent` passes on.
 */
export function injectTraceContext(headers: Record<string, string>): void {
  propagation.inject(context.active(), headers, recordSetter);
}

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
