import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { createClient, type CallOptions, type HandlerContext, type ServiceImpl, type Transport } from "@connectrpc/connect";

/** Request headers that carry the caller's identity and tracing to the owning service. */
export const forwardedHeaders = ["authorization", "traceparent", "tracestate", "x-request-id"];

/**
 * Builds a handler for every method of `service` that forwards the call to `upstream`, the process that
 * owns the service. Driven only by the service descriptor, so one mechanism serves every RPC: unary and
 * streaming in both directions, with backpressure because request and response streams are passed
 * through as async iterables rather than collected. Upstream errors reach the caller unchanged.
 */
export function forwardingImpl<S extends DescService>(service: S, upstream: Transport): ServiceImpl<S> {
  const client = createClient(service, upstream) as unknown as Record<string, UpstreamCall>;
  const impl: Record<string, Handler> = {};
  for (const method of service.methods) {
    impl[method.localName] = forwardMethod(method, client[method.localName] as UpstreamCall);
  }
  return impl as unknown as ServiceImpl<S>;
}

// A generated client method and a handler, seen without the per-method message types.
type UpstreamCall = (request: unknown, options: CallOptions) => unknown;
type Handler = (request: unknown, ctx: HandlerContext) => unknown;

function forwardMethod(method: DescMethod, call: UpstreamCall): Handler {
  const options = (ctx: HandlerContext): CallOptions => {
    const headers = new Headers();
    for (const name of forwardedHeaders) {
      const value = ctx.requestHeader.get(name);
      if (value !== null) headers.set(name, value);
    }
    return { headers, signal: ctx.signal, timeoutMs: ctx.timeoutMs() };
  };
  switch (method.methodKind) {
    case "unary":
    case "client_streaming":
      return (request, ctx) => call(request, options(ctx));
    case "server_streaming":
    case "bidi_streaming":
      return async function* (request: unknown, ctx: HandlerContext) {
        yield* call(request, options(ctx)) as AsyncIterable<unknown>;
      };
  }
}
