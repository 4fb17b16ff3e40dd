import { create, type DescMessage, type Message, toBinary } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextKey, type HandlerContext, type MethodImplSpec } from "@connectrpc/connect";
import type { EncodedRelay, EncodedServerStream, EncodedSink } from "./encoded-stream.js";

/**
 * Pre-encoded streams and relays, made into method implementations the fast path runs like any other
 * (same interceptors, same context): their response messages go to an EncodedSink handed over in the
 * call's context values, so the implementations yield (or return) nothing the path would encode.
 */

/** How the fast path treats an implementation's output. */
export type EncodedKind = "stream" | "relay";

/** A sink the call owns, flushed before the call ends. */
export interface CallSink extends EncodedSink {
  flush(): void;
}

/** The sink of the call, set by the fast path before the implementation runs. */
export const encodedSinkKey = createContextKey<CallSink | undefined>(undefined, { description: "fast-path encoded sink" });

const kinds = new WeakMap<MethodImplSpec, EncodedKind>();

/** The bytes each request message of a relayed call arrived as, so it is passed on without re-encoding. */
const receivedBytes = new WeakMap<Message, Uint8Array>();

export function encodedKindOf(spec: MethodImplSpec): EncodedKind | undefined {
  return kinds.get(spec);
}

/** Remembers the bytes `message` was decoded from (relays only: nothing else needs them). */
export function rememberReceivedBytes(message: Message, bytes: Uint8Array): void {
  receivedBytes.set(message, bytes);
}

function sinkOf(context: HandlerContext): CallSink {
  const sink = context.values.get(encodedSinkKey);
  if (!sink) throw new ConnectError("an encoded procedure was called outside the fast path", Code.Internal);
  return sink;
}

/** A pre-encoded server stream (the stream process's Subscribe). */
export function encodedStreamSpec(encoded: EncodedServerStream): MethodImplSpec {
  const spec = {
    kind: "server_streaming",
    method: encoded.method,
    impl: async function* (request: Message, context: HandlerContext) {
      const sink = sinkOf(context);
      try {
        await encoded.serve(request as never, context, sink);
      } finally {
        sink.flush();
      }
    },
  } as MethodImplSpec;
  kinds.set(spec, "stream");
  return spec;
}

/** A relayed procedure of any shape: requests passed on as received, responses as the upstream sent them. */
export function relaySpec(relay: EncodedRelay): MethodImplSpec {
  const { method } = relay;
  const bytesOf = (message: Message) => receivedBytes.get(message) ?? toBinary(method.input as DescMessage, message);
  async function* one(message: Message) {
    yield bytesOf(message);
  }
  async function* each(messages: AsyncIterable<Message>) {
    for await (const message of messages) yield bytesOf(message);
  }
  const serve = async (requests: AsyncIterable<Uint8Array>, context: HandlerContext) => {
    const sink = sinkOf(context);
    try {
      await relay.serve(requests, context, sink);
    } finally {
      sink.flush();
    }
  };
  // The response already went to the sink: what the interceptors see returned is an empty message.
  const placeholder = () => create(method.output as DescMessage);
  let impl: unknown;
  switch (method.methodKind) {
    case "unary":
      impl = async (request: Message, context: HandlerContext) => (await serve(one(request), context), placeholder());
      break;
    case "client_streaming":
      impl = async (requests: AsyncIterable<Message>, context: HandlerContext) => (await serve(each(requests), context), placeholder());
      break;
    case "server_streaming":
      impl = async function* (request: Message, context: HandlerContext) {
        await serve(one(request), context);
      };
      break;
    case "bidi_streaming":
      impl = async function* (requests: AsyncIterable<Message>, context: HandlerContext) {
        await serve(each(requests), context);
      };
      break;
  }
  const spec = { kind: method.methodKind, method, impl } as MethodImplSpec;
  kinds.set(spec, "relay");
  return spec;
}
