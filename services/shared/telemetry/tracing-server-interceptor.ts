import { ConnectError, type Interceptor, type StreamRequest, type UnaryRequest } from "@connectrpc/connect";
import { codeToString } from "@connectrpc/connect/protocol-connect";
import {
  context,
  propagation,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type TextMapGetter,
  type Tracer,
} from "@opentelemetry/api";
import { principalKey } from "../principal.js";

/** Span attribute holding the caller's workspace; never the credential that proved it. */
export const workspaceAttribute = "mentatlab.workspace";

type RpcSystem = "grpc" | "connect_rpc";

const headerGetter: TextMapGetter<Headers> = {
  keys: (headers) => [...headers.keys()],
  get: (headers, key) => headers.get(key) ?? undefined,
};

// gRPC-web reports gRPC status codes, so it is traced as gRPC.
function rpcSystemOf(header: Headers): RpcSystem {
  return header.get("content-type")?.startsWith("application/grpc") ? "grpc" : "connect_rpc";
}

/**
 * Opens a SERVER span per RPC, named `<package.Service>/<Method>`, continuing the caller's trace from
 * its `traceparent` header. The handler runs with the span active, so the calls it makes to peers
 * carry it on. A streaming response's span ends when the stream does, not when the handler returns.
 * Installed outermost, so calls refused by authentication or validation are traced too.
 */
export function serverTracingInterceptor(tracer: Tracer): Interceptor {
  return (next) => async (req) => {
    const system = rpcSystemOf(req.header);
    const parent = propagation.extract(ROOT_CONTEXT, req.header, headerGetter);
    const span = tracer.startSpan(
      `${req.service.typeName}/${req.method.name}`,
      {
        kind: SpanKind.SERVER,
        attributes: { "rpc.system": system, "rpc.service": req.service.typeName, "rpc.method": req.method.name },
      },
      parent,
    );
    const active = trace.setSpan(parent, span);
    let res: Awaited<ReturnType<typeof next>>;
    try {
      res = await context.with(active, () => next(req));
    } catch (error) {
      endSpan(span, req, system, error);
      throw error;
    }
    if (!res.stream) {
      endSpan(span, req, system, undefined);
      return res;
    }
    let ended = false;
    const end = (error: unknown) => {
      if (ended) return;
      ended = true;
      endSpan(span, req, system, error);
    };
    // The encoded-stream fast path serves the whole stream inside the call and never pulls the messages
    // returned here; the call's signal, aborted once the call is over, ends the span there.
    const onAbort = () => end(req.signal.reason instanceof ConnectError ? req.signal.reason : undefined);
    if (req.signal.aborted) onAbort();
    else req.signal.addEventListener("abort", onAbort, { once: true });
    return { ...res, message: tracedMessages(res.message, active, end) };
  };
}

/**
 * Pulls each message of a streaming response with the span active (a generator handler's body runs
 * on each pull, not when the handler is called) and reports how the stream ended.
 */
async function* tracedMessages<T>(messages: AsyncIterable<T>, active: Context, end: (error: unknown) => void): AsyncGenerator<T> {
  const iterator = messages[Symbol.asyncIterator]();
  let outcome: unknown;
  let drained = false;
  try {
    for (;;) {
      const result = await context.with(active, () => iterator.next());
      if (result.done) {
        drained = true;
        return;
      }
      yield result.value;
    }
  } catch (error) {
    drained = true;
    outcome = error;
    throw error;
  } finally {
    // The consumer stopped early (client went away): close the source too, in the handler's context.
    if (!drained) await context.with(active, async () => iterator.return?.());
    end(outcome);
  }
}

function endSpan(span: Span, req: UnaryRequest | StreamRequest, system: RpcSystem, error: unknown): void {
  const workspace = req.contextValues.get(principalKey)?.workspace;
  if (workspace !== undefined) span.setAttribute(workspaceAttribute, workspace);
  if (error === undefined) {
    if (system === "grpc") span.setAttribute("rpc.grpc.status_code", 0);
  } else {
    const connectError = ConnectError.from(error);
    if (system === "grpc") span.setAttribute("rpc.grpc.status_code", connectError.code);
    else span.setAttribute("rpc.connect_rpc.error_code", codeToString(connectError.code));
    span.setStatus({ code: SpanStatusCode.ERROR, message: connectError.rawMessage });
  }
  span.end();
}
