import type { MessageInitShape } from "@bufbuild/protobuf";
import type { Client, Interceptor } from "@connectrpc/connect";
import { type PublishRequestSchema, type StreamEvent, StreamService } from "../../gen/mentatlab/v1/stream_pb.js";
import { inMemoryClient, testPrincipal } from "../../test/support/in-memory.js";
import type { Principal } from "../shared/principal.js";
import { type StreamConfig, streamConfigFromEnv } from "./config.js";
import { afterEach } from "vitest";
import { type RunningServer, startServer } from "../server/server.js";
import { createStreams, type StreamRuntime } from "./index.js";

// Helpers for this folder's tests only.

export function testStreamConfig(overrides: Partial<StreamConfig> = {}): StreamConfig {
  return { ...streamConfigFromEnv({}), sweepIntervalMs: 3_600_000, ...overrides };
}

/** A factory of stream runtimes for one test file; every runtime it made is closed after each test. */
export function runtimesClosedAfterEach(): (overrides?: Partial<StreamConfig>) => Promise<StreamRuntime> {
  const runtimes: StreamRuntime[] = [];
  afterEach(async () => {
    await Promise.all(runtimes.splice(0).map((r) => r.close()));
  });
  return async (overrides = {}) => {
    const r = await createStreams(testStreamConfig(overrides));
    runtimes.push(r);
    return r;
  };
}

export function clientFor(runtime: StreamRuntime, principal: Partial<Principal> = {}): Client<typeof StreamService> {
  return inMemoryClient(StreamService, (router) => router.service(StreamService, runtime.impl), testPrincipal(principal));
}

/**
 * The stream service on the one-port server over real sockets, with the encoded Subscribe fast path and
 * no compression, as `mentatlab serve stream` runs it; `principals` sets each caller's principal.
 */
export async function serveOverSockets(config: Partial<StreamConfig>, principals: Interceptor): Promise<{ server: RunningServer; runtime: StreamRuntime }> {
  const runtime = await createStreams(testStreamConfig(config));
  const server = await startServer({
    port: 0,
    routes: (router) => router.service(StreamService, runtime.impl),
    interceptors: [principals],
    encodedStreams: runtime.encodedStreams,
    uncompressedServices: [StreamService.typeName],
    shutdownGraceMs: 200,
  });
  return { server, runtime };
}

/** A request stream the test feeds message by message, as a producer on a long-lived call would. */
export { Pushable } from "../shared/pushable.js";

export type PublishMessage = MessageInitShape<typeof PublishRequestSchema>;

export function dataMessage(text: string | Uint8Array, clientSeq: bigint): PublishMessage {
  const data = typeof text === "string" ? new TextEncoder().encode(text) : text;
  return { part: { case: "data", value: { data, clientSeq } } };
}

export async function collectEvents(events: AsyncIterable<StreamEvent>): Promise<StreamEvent[]> {
  const out: StreamEvent[] = [];
  for await (const event of events) out.push(event);
  return out;
}

export function payloadTexts(events: readonly StreamEvent[]): string[] {
  return events.flatMap((e) => (e.event.case === "data" ? [new TextDecoder().decode(e.event.value.data)] : []));
}

export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      promise,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** A Server-Sent Events body read as text: `until(needle)` reads on until it has arrived, `seen` is all read so far. */
export function sseText(response: Response): {
  until(needle: string): Promise<void>;
  readonly seen: string;
  next(): Promise<ReadableStreamReadResult<string>>;
} {
  const reader = response.body?.pipeThrough(new TextDecoderStream()).getReader();
  if (!reader) throw new Error("the response has no body");
  let seen = "";
  return {
    async until(needle) {
      while (!seen.includes(needle)) {
        const { value, done } = await within(reader.read(), 5_000, `waiting for ${needle}`);
        if (done) throw new Error(`the SSE body ended before ${needle}`);
        seen += value;
      }
    },
    get seen() {
      return seen;
    },
    next: () => reader.read(),
  };
}
