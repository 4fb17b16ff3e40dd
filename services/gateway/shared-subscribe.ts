import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { createHandlerContext, type HandlerContext } from "@connectrpc/connect";
import { StreamEventSchema, StreamService, type SubscribeRequest, SubscribeRequestSchema } from "../../gen/mentatlab/v1/stream_pb.js";
import { type EncodedRelay, type EncodedServerStream, type EncodedSink, EnvelopeAssembler } from "../server/fast-path/index.js";
import { type Principal, principalOf } from "../shared/principal.js";
import { subscriberFellBehind } from "../stream/index.js";

type SubscribeMethod = typeof StreamService.method.subscribe;

/**
 * Subscribe at the distributed gateway, over `upstream` (the relay of Subscribe to the stream process): callers asking for the same stream from the same position
 * with the same credentials' scope (workspace, user) share one upstream call to the
 * stream process, whose envelopes are written to each of them as received, never decoded. Each caller
 * has passed the gateway's own authentication and permission check before it joins; the upstream
 * carries the first caller's credentials, which is why the share is keyed by who is asking and not
 * only by the stream. A caller more than `maxLagBytes` of envelopes behind the upstream is cut off
 * with OUT_OF_RANGE; it never holds back the others. The upstream is cancelled when its last caller
 * leaves, and its end (OK or an error) reaches every caller. A run token's caller (an agent's sidecar)
 * gets an upstream call of its own, paced by its reading.
 */
export function sharedSubscribe(upstream: EncodedRelay, maxLagBytes: number, readMaxBytes: number): EncodedServerStream<SubscribeMethod> {
  const shares = new Map<string, SharedUpstream>();
  return {
    method: StreamService.method.subscribe,
    async serve(request, context, out) {
      context.signal.throwIfAborted();
      const principal = principalOf(context);
      // A run's agent reads alone, with HTTP/2 flow control end to end: its stream's producer may be
      // held to its pace (`backpressure: block`), which a share reading ahead for it would defeat.
      if (principal.run) return upstream.serve(requestOnce(toBinary(SubscribeRequestSchema, request)), context, out);
      const key = shareKey(principal, request);
      let share = shares.get(key);
      if (!share?.joinable) {
        const created = new SharedUpstream(maxLagBytes, readMaxBytes, () => {
          if (shares.get(key) === created) shares.delete(key);
        });
        created.start(upstream, request, context.requestHeader);
        shares.set(key, created);
        share = created;
      }
      const subscriber = new SharedSubscriber(out, maxLagBytes, request.streamId);
      const leave = (): void => subscriber.finish(context.signal.reason);
      context.signal.addEventListener("abort", leave, { once: true });
      share.join(subscriber);
      try {
        await subscriber.done;
      } finally {
        context.signal.removeEventListener("abort", leave);
        share.leave(subscriber);
      }
    },
  };
}

function shareKey(principal: Principal, request: SubscribeRequest): string {
  const { workspace, user } = principal;
  return JSON.stringify([workspace, user, request.streamId, String(request.afterSeq), request.acceptGzip]);
}

function seqOf(envelope: Uint8Array): bigint {
  return fromBinary(StreamEventSchema, envelope.subarray(5)).seq;
}

/**
 * One upstream Subscribe call and the callers sharing it. It keeps what it has received, up to
 * `maxHistoryBytes`, so a caller joining later at the same position still gets every event; past that
 * it stops taking new callers, who get an upstream of their own.
 */
class SharedUpstream {
  private readonly members = new Set<SharedSubscriber>();
  private history: Uint8Array[] | undefined = [];
  private historyBytes = 0;
  private ended = false;
  private outcome: unknown;
  private readonly stop = new AbortController();

  constructor(
    private readonly maxHistoryBytes: number,
    /** Largest event envelope taken from the upstream. */
    private readonly readMaxBytes: number,
    /** Called once it takes no new callers (ended, idle or past its history budget). */
    private readonly retire: () => void,
  ) {}

  get joinable(): boolean {
    return !this.ended && this.history !== undefined && !this.stop.signal.aborted;
  }

  start(relay: EncodedRelay, request: SubscribeRequest, requestHeader: Headers): void {
    const context: HandlerContext = createHandlerContext({
      service: StreamService,
      method: StreamService.method.subscribe,
      protocolName: "grpc",
      requestMethod: "POST",
      url: `/${StreamService.typeName}/${StreamService.method.subscribe.name}`,
      requestSignal: this.stop.signal,
      requestHeader,
    });
    // The relay passes the upstream's bytes on in the chunks they arrived in; callers joining late and
    // callers cut off need message boundaries, so the share cuts them into whole envelopes, once for all.
    const assembler = new EnvelopeAssembler(this.readMaxBytes);
    const sink: EncodedSink = {
      write: (bytes) => {
        for (const chunk of bytes instanceof Uint8Array ? [bytes] : bytes) {
          for (const { framed } of assembler.push(Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength))) {
            this.remember(framed);
            for (const member of this.members) member.deliver(framed);
          }
        }
        // Never pushes back: each caller's own budget bounds what is held for it.
        return true;
      },
      ready: async () => undefined,
    };
    relay.serve(requestOnce(toBinary(SubscribeRequestSchema, request)), context, sink).then(
      () => this.end(undefined),
      (err: unknown) => this.end(err),
    );
  }

  join(member: SharedSubscriber): void {
    for (const envelope of this.history ?? []) member.deliver(envelope);
    if (this.ended) {
      member.finish(this.outcome);
      return;
    }
    this.members.add(member);
  }

  leave(member: SharedSubscriber): void {
    this.members.delete(member);
    if (this.members.size > 0 || this.ended) return;
    this.retire();
    this.stop.abort();
  }

  private remember(envelope: Uint8Array): void {
    if (!this.history) return;
    this.historyBytes += envelope.byteLength;
    if (this.historyBytes <= this.maxHistoryBytes) {
      this.history.push(envelope);
      return;
    }
    this.history = undefined;
    this.retire();
  }

  private end(error: unknown): void {
    this.ended = true;
    this.outcome = error;
    this.history = undefined;
    this.retire();
    for (const member of this.members) member.finish(error);
  }
}

/** One caller of a shared upstream: what it has not yet taken, bounded, and how its call ends. */
class SharedSubscriber {
  private pending: Uint8Array[] = [];
  private pendingBytes = 0;
  private blocked = false;
  private ending: { readonly error: unknown } | undefined;
  private settled = false;
  private resolve: () => void = () => undefined;
  private reject: (error: unknown) => void = () => undefined;
  /** Resolves when the upstream ended OK and everything reached the caller; rejects with its error. */
  readonly done = new Promise<void>((resolve, reject) => {
    this.resolve = resolve;
    this.reject = reject;
  });

  constructor(
    private readonly out: EncodedSink,
    private readonly maxLagBytes: number,
    private readonly streamId: string,
  ) {}

  deliver(envelope: Uint8Array): void {
    if (this.settled || this.ending) return;
    if (!this.blocked) {
      this.write(envelope);
      return;
    }
    this.pending.push(envelope);
    this.pendingBytes += envelope.byteLength;
    if (this.pendingBytes > this.maxLagBytes) {
      const oldest = seqOf(this.pending[0] ?? envelope);
      this.settle(subscriberFellBehind(this.streamId, this.maxLagBytes, oldest - 1n, oldest));
    }
  }

  /** Ends the call once what it holds is written: OK when `error` is undefined. */
  finish(error: unknown): void {
    if (this.settled || this.ending) return;
    this.ending = { error };
    // An error (the caller left, the upstream failed) needs no backlog written before it.
    if (error !== undefined || !this.blocked) this.settle(error);
  }

  private write(envelope: Uint8Array): void {
    if (this.out.write(envelope)) return;
    this.blocked = true;
    void this.out.ready().then(() => this.drain());
  }

  private drain(): void {
    this.blocked = false;
    while (!this.settled && this.pending.length > 0 && !this.blocked) {
      const envelope = this.pending.shift() as Uint8Array;
      this.pendingBytes -= envelope.byteLength;
      this.write(envelope);
    }
    if (!this.blocked && this.ending) this.settle(this.ending.error);
  }

  private settle(error: unknown): void {
    if (this.settled) return;
    this.settled = true;
    this.pending = [];
    if (error === undefined) this.resolve();
    else this.reject(error);
  }
}

async function* requestOnce(message: Uint8Array): AsyncGenerator<Uint8Array> {
  yield message;
}
