import { clone, create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import type { Redis } from "ioredis";
import {
  StreamAnnouncementKind,
  type StreamEvent,
  StreamEventSchema,
  type StreamInfo,
  StreamInfoSchema,
  StreamState,
  WatchStreamsResponseSchema,
} from "../../gen/mentatlab/v1/stream_pb.js";
import { connectRedis, dedicatedConnection } from "../shared/redis.js";
import { AsyncQueue } from "./async-queue.js";
import {
  behindRetained,
  followInterrupted,
  maxDurationMessage,
  maxDurationReached,
  serviceClosing,
  storeUnavailable,
  streamDataLost,
  streamEnded,
  streamNotFound,
  subscriberFellBehind,
  tooManyOpenStreams,
} from "./errors.js";
import { EventWindow, isTerminal } from "./event-window.js";
import { dataEvent, endingEvent, endingState, startEvent } from "./events.js";
import { follow } from "./follow.js";
import { matchesList } from "./list-filter.js";
import { NEVER_ATTACHED } from "./consumer-state.js";
import { appendScript, consumerScript, createScript, endScript, trimScript } from "./redis-scripts.js";
import { entryOf, followRedisStream, type StreamEntry } from "./redis-tail.js";
import type {
  Announcement,
  AppendResult,
  ConsumerState,
  Ending,
  ListPage,
  ListQuery,
  PayloadInput,
  Retention,
  StreamKey,
  StreamRecord,
  StreamStore,
} from "./stream-store.js";
import { isStreamId, streamCreatedMs } from "./stream-id.js";

export interface RedisStreamStoreOptions extends Retention {
  /** Prefix of every key, e.g. `ml:stream:`. */
  readonly keyPrefix: string;
  /** Longest a stream stays open: with `endedTtlMs`, how long a missing stream could have lived. */
  readonly maxDurationMs: number;
}

const ANNOUNCE_MAX_LEN = 10_000;
const WATCH_BACKLOG = 10_000;
// The per-process cache in front of Redis that live subscribers read: the retained events up to this many
// bytes, so subscribers a little behind do not each go to Redis; laggards past it read Redis itself.
const TAIL_WINDOW_BYTES = 32 * 1024 * 1024;
const END_ATTEMPTS = 100;
const LIST_SCAN = 100;

/** Names of the keys, one place; workspaces are URI-encoded so no workspace can forge another's key. */
class Keys {
  constructor(private readonly prefix: string) {}
  meta(key: StreamKey): string {
    return `${this.prefix}s:${encodeURIComponent(key.workspace)}:${key.id}:m`;
  }
  events(key: StreamKey): string {
    return `${this.prefix}s:${encodeURIComponent(key.workspace)}:${key.id}:e`;
  }
  consumers(key: StreamKey): string {
    return `${this.prefix}s:${encodeURIComponent(key.workspace)}:${key.id}:c`;
  }
  ownerOpen(workspace: string, owner: string): string {
    return `${this.prefix}o:${encodeURIComponent(workspace)}:${encodeURIComponent(owner)}`;
  }
  workspaceIndex(workspace: string): string {
    return `${this.prefix}w:${encodeURIComponent(workspace)}`;
  }
  get open(): string {
    return `${this.prefix}open`;
  }
  get announcements(): string {
    return `${this.prefix}announce`;
  }
  /** Since when (ms) this Redis has held the streams' data (see `dataSinceMs`). */
  get dataSince(): string {
    return `${this.prefix}data-since`;
  }
  openMember(key: StreamKey): string {
    return `${encodeURIComponent(key.workspace)} ${key.id}`;
  }
  parseOpenMember(member: string): StreamKey {
    const [workspace = "", id = ""] = member.split(" ");
    return { workspace: decodeURIComponent(workspace), id };
  }
}

interface Tail {
  readonly window: EventWindow;
  readonly ready: Promise<void>;
  /** Aborted when this process stops following the stream, with the error its readers get if it failed. */
  readonly stop: AbortController;
  refs: number;
}

interface Watcher {
  readonly workspace: string;
  readonly queue: AsyncQueue<Announcement>;
}

interface AnnouncementHub {
  readonly ready: Promise<void>;
  readonly watchers: Set<Watcher>;
  readonly stop: AbortController;
}

function tailKey(key: StreamKey): string {
  return `${key.workspace}\u0000${key.id}`;
}

function seqOf(entryId: string): bigint {
  return BigInt(entryId.slice(0, entryId.indexOf("-")));
}

function decodeEvent(entry: StreamEntry): StreamEvent {
  const event = fromBinary(StreamEventSchema, entry.fields.get("e") ?? new Uint8Array());
  event.seq = seqOf(entry.id);
  const offset = entry.fields.get("o");
  if (event.event.case === "data" && offset) event.event.value.offset = BigInt(String(offset));
  return event;
}

// Stored events leave seq out: the Lua script assigns it, as the entry id.
function encodeEvent(event: StreamEvent): Uint8Array {
  return toBinary(StreamEventSchema, { ...event, seq: 0n });
}

function encodeAnnouncement(kind: StreamAnnouncementKind, stream: StreamInfo): Uint8Array {
  return toBinary(WatchStreamsResponseSchema, create(WatchStreamsResponseSchema, { kind, stream }));
}

/**
 * Streams in Redis, shared by every replica: a hash per stream for its description and counters, a
 * Redis stream of its events (entry id = seq, trimmed with MAXLEN ~ and by age), a zset of open streams
 * by deadline, a lexicographic index per workspace, and a Redis stream of announcements. Writes are Lua
 * scripts, so seq assignment, de-duplication and limits hold across processes. Each process follows a
 * stream with one XREAD loop however many subscribers it has, and fans out from memory.
 */
export class RedisStreamStore implements StreamStore {
  private readonly keys: Keys;
  private readonly tails = new Map<string, Tail>();
  private hub: AnnouncementHub | undefined;
  private readonly closing = new AbortController();

  constructor(
    private readonly redis: Redis,
    private readonly options: RedisStreamStoreOptions,
  ) {
    this.keys = new Keys(options.keyPrefix);
  }

  /** `timeoutMs` bounds every wait on Redis (connectRedis). */
  static async connect(url: string, options: RedisStreamStoreOptions, timeoutMs: number): Promise<RedisStreamStore> {
    const redis = await connectRedis(url, { user: "stream", timeoutMs });
    const store = new RedisStreamStore(redis, options);
    await store.dataSinceMs();
    return store;
  }

  /**
   * Since when this Redis has held the streams' data. The mark is set when a store first finds it
   * missing and by every stream created, so a Redis that came back empty gets a new one before its
   * first new stream, and streams created before it read as lost, not as unknown.
   */
  private async dataSinceMs(): Promise<number> {
    const mark = await this.redis.get(this.keys.dataSince).catch(storeUnavailable);
    if (mark !== null) return Number(mark);
    await this.redis.set(this.keys.dataSince, Date.now(), "NX").catch(storeUnavailable);
    return Number(await this.redis.get(this.keys.dataSince).catch(storeUnavailable));
  }

  async create(info: StreamInfo, deadlineMs: number, maxOpenPerOwner: number, timeMs: number): Promise<StreamInfo> {
    const key = { workspace: info.ref?.workspace ?? "", id: info.ref?.streamId ?? "" };
    const stored = clone(StreamInfoSchema, info);
    stored.state = StreamState.OPEN;
    stored.createdAt = timestampFromMs(timeMs);
    stored.lastSeq = 1n;
    stored.firstRetainedSeq = 1n;
    const [status] = await createScript.run(
      this.redis,
      [
        this.keys.meta(key),
        this.keys.events(key),
        this.keys.ownerOpen(key.workspace, info.owner),
        this.keys.open,
        this.keys.workspaceIndex(key.workspace),
        this.keys.announcements,
        this.keys.dataSince,
      ],
      [
        key.id,
        toBinary(StreamInfoSchema, stored),
        deadlineMs,
        maxOpenPerOwner,
        encodeEvent(startEvent(stored, timeMs)),
        timeMs,
        this.options.retainedMaxEvents,
        this.keys.openMember(key),
        ANNOUNCE_MAX_LEN,
        key.workspace,
        encodeAnnouncement(StreamAnnouncementKind.AVAILABLE, stored),
      ],
    );
    if (status === "limit") throw tooManyOpenStreams(info.owner, maxOpenPerOwner);
    // "exists" is a create whose reply was lost to a reconnect and which ioredis sent again.
    return stored;
  }

  async get(key: StreamKey): Promise<StreamRecord | undefined> {
    if (!isStreamId(key.id)) return undefined;
    const [record] = await this.getMany([key]);
    if (!record) await this.throwIfLost(key);
    return record;
  }

  /**
   * Throws DATA_LOSS for a missing stream that was created before Redis last came back empty and
   * could still have been open or readable then; a stream that simply ended and expired, or never
   * existed, is left to the caller's NOT_FOUND.
   */
  private async throwIfLost(key: StreamKey): Promise<void> {
    const since = await this.dataSinceMs();
    const createdMs = streamCreatedMs(key.id);
    const couldLiveUntilMs = createdMs + this.options.maxDurationMs + this.options.endedTtlMs;
    if (createdMs < since && couldLiveUntilMs >= since) throw streamDataLost(key.id, since);
  }

  private async notFoundOrLost(key: StreamKey): Promise<never> {
    await this.throwIfLost(key);
    throw streamNotFound(key.id);
  }

  /** Several streams' records in one round trip; each stream's hash and first entry read atomically. */
  private async getMany(keys: readonly StreamKey[]): Promise<(StreamRecord | undefined)[]> {
    const transaction = this.redis.multi();
    for (const key of keys) {
      transaction.hgetallBuffer(this.keys.meta(key)).xrangeBuffer(this.keys.events(key), "-", "+", "COUNT", 1).hgetall(this.keys.consumers(key));
    }
    const replies = (await transaction.exec().catch(storeUnavailable)) ?? [];
    return keys.map((_, i) => {
      const [metaError, meta] = replies[3 * i] ?? [];
      const [firstError, firstEntries] = replies[3 * i + 1] ?? [];
      const [consumersError, consumers] = replies[3 * i + 2] ?? [];
      if (metaError) throw metaError;
      if (firstError) throw firstError;
      if (consumersError) throw consumersError;
      const first = (firstEntries as [Buffer, Buffer[]][] | undefined)?.[0];
      return recordOf(meta as Record<string, Buffer>, first ? String(first[0]) : undefined, consumers as Record<string, string>);
    });
  }

  async list(workspace: string, query: ListQuery): Promise<ListPage> {
    const index = this.keys.workspaceIndex(workspace);
    const matches: StreamInfo[] = [];
    let cursor = query.cursor;
    for (;;) {
      const ids = await this.redis.zrevrangebylex(index, cursor ? `(${cursor}` : "+", "-", "LIMIT", 0, LIST_SCAN).catch(storeUnavailable);
      const records = ids.length > 0 ? await this.getMany(ids.map((id) => ({ workspace, id }))) : [];
      for (const [i, id] of ids.entries()) {
        const record = records[i];
        if (!record) {
          // The stream expired after its end; drop it from the index lazily.
          await this.redis.zrem(index, id).catch(storeUnavailable);
          continue;
        }
        if (!matchesList(record.info, query)) continue;
        if (matches.length === query.pageSize) {
          const last = matches[matches.length - 1];
          return { streams: matches, nextCursor: last?.ref?.streamId ?? "" };
        }
        matches.push(record.info);
      }
      if (ids.length < LIST_SCAN) return { streams: matches, nextCursor: "" };
      cursor = ids[ids.length - 1] ?? "";
    }
  }

  async append(key: StreamKey, payloads: readonly PayloadInput[], timeMs: number): Promise<AppendResult> {
    if (!isStreamId(key.id)) throw streamNotFound(key.id);
    const args: (string | number | Uint8Array)[] = [timeMs, this.options.retainedMaxEvents, payloads.length];
    const events = payloads.map((payload) => dataEvent(0n, payload, 0n, timeMs));
    for (const [i, payload] of payloads.entries()) {
      args.push(payload.clientSeq.toString(), payload.data.byteLength, encodeEvent(events[i] as StreamEvent));
    }
    const reply = await appendScript.run(this.redis, [this.keys.meta(key), this.keys.events(key)], args);
    const [status, ...rest] = reply.map(String);
    if (status === "missing") throw streamNotFound(key.id);
    if (status === "ended") throw streamEnded(key.id, Number(rest[0]) as StreamState);
    if (status === "overdue") {
      const deadlineMs = Number(rest[0]);
      try {
        await this.end(key, { error: { message: maxDurationMessage(deadlineMs), code: Code.DeadlineExceeded } }, timeMs);
      } catch {
        // Another replica ended it first; the caller's error is the same either way.
      }
      throw maxDurationReached(key.id, deadlineMs);
    }
    const lastSeq = BigInt(rest[0] ?? 0);
    const storedIndexes = rest.slice(5).map(Number);
    let offset = BigInt(rest[4] ?? 0);
    for (const index of storedIndexes) {
      const event = events[index];
      if (event?.event.case !== "data") continue;
      event.event.value.offset = offset;
      offset += BigInt(event.event.value.data.byteLength);
    }
    this.showLocally(key, storedIndexes, events, lastSeq);
    return {
      lastSeq,
      lastClientSeq: BigInt(rest[1] ?? 0),
      appended: Number(rest[2]),
      appendedBytes: Number(rest[3]),
    };
  }

  async end(key: StreamKey, ending: Ending, timeMs: number): Promise<StreamInfo> {
    for (let attempt = 0; attempt < END_ATTEMPTS; attempt++) {
      const record = await this.get(key);
      if (!record) throw streamNotFound(key.id);
      const { info } = record;
      if (info.state !== StreamState.OPEN) throw streamEnded(key.id, info.state);
      const seq = info.lastSeq + 1n;
      const ended = clone(StreamInfoSchema, info);
      ended.state = endingState(ending);
      ended.lastSeq = seq;
      ended.endedAt = timestampFromMs(timeMs);
      const [status, state] = (
        await endScript.run(
          this.redis,
          [this.keys.meta(key), this.keys.events(key), this.keys.ownerOpen(key.workspace, info.owner), this.keys.open, this.keys.announcements],
          [
            info.lastSeq.toString(),
            ended.state,
            timeMs,
            encodeEvent(endingEvent(seq, info.bytesPublished, ending, timeMs)),
            Math.ceil(this.options.endedTtlMs),
            this.keys.openMember(key),
            key.id,
            this.options.retainedMaxEvents,
            ANNOUNCE_MAX_LEN,
            key.workspace,
            encodeAnnouncement(StreamAnnouncementKind.ENDED, ended),
          ],
        )
      ).map(String);
      if (status === "ok") return ended;
      if (status === "missing") throw streamNotFound(key.id);
      if (status === "ended") throw streamEnded(key.id, Number(state) as StreamState);
    }
    throw new Error(`could not end stream "${key.id}": its producer kept appending`);
  }

  async consumerAttached(key: StreamKey, nodeId: string, attached: boolean, timeMs: number): Promise<void> {
    await consumerScript.run(this.redis, [this.keys.consumers(key)], [attached ? "attach" : "detach", nodeId, this.consumersTtlMs, timeMs]);
  }

  async consumerAdvanced(key: StreamKey, nodeId: string, seq: bigint, bytes: bigint): Promise<void> {
    await consumerScript.run(this.redis, [this.keys.consumers(key)], ["advance", nodeId, this.consumersTtlMs, seq.toString(), bytes.toString()]);
  }

  /** The consumer hash of a stream outlives any stream that could still be open or readable. */
  private get consumersTtlMs(): number {
    return Math.ceil(this.options.maxDurationMs + this.options.endedTtlMs);
  }

  async events(key: StreamKey, afterSeq: bigint, signal: AbortSignal, lagLimited = true): Promise<AsyncIterable<StreamEvent>> {
    if (!isStreamId(key.id)) throw streamNotFound(key.id);
    if ((await this.redis.exists(this.keys.meta(key)).catch(storeUnavailable)) === 0) await this.notFoundOrLost(key);
    const tail = await this.acquireTail(key);
    return follow(
      {
        window: tail.window,
        fetchAfter: (after, limit) => this.fetchAfter(key, after, limit),
        maxLagBytes: lagLimited ? this.options.subscriberMaxLagBytes : Infinity,
        // Redis may retain older events than this process's window holds; those are available too.
        fellBehind: (lastSeq) => subscriberFellBehind(key.id, this.options.subscriberMaxLagBytes, lastSeq, BigInt(tail.window.first ?? 1)),
      },
      afterSeq,
      AbortSignal.any([signal, this.closing.signal, tail.stop.signal]),
      () => this.releaseTail(key, tail),
    );
  }

  async announcements(workspace: string, signal: AbortSignal): Promise<AsyncIterable<Announcement>> {
    const hub = this.announcementHub();
    await hub.ready.catch(storeUnavailable);
    // The hub may have failed since it got ready; its watchers were told then, this one would never be.
    hub.stop.signal.throwIfAborted();
    const watcher: Watcher = {
      workspace,
      queue: new AsyncQueue<Announcement>(WATCH_BACKLOG, () => hub.watchers.delete(watcher)),
    };
    const stop = AbortSignal.any([signal, this.closing.signal]);
    stop.addEventListener("abort", () => watcher.queue.fail(stop.reason), { once: true });
    hub.watchers.add(watcher);
    return watcher.queue;
  }

  async overdue(nowMs: number): Promise<StreamKey[]> {
    const members = await this.redis.zrangebyscore(this.keys.open, "-inf", nowMs);
    return members.map((member) => this.keys.parseOpenMember(member));
  }

  async countOpen(): Promise<number> {
    return this.redis.zcard(this.keys.open);
  }

  async trim(nowMs: number): Promise<void> {
    const cutoff = nowMs - this.options.retainedMs;
    for (const member of await this.redis.zrange(this.keys.open, "0", "-1")) {
      await trimScript.run(this.redis, [this.keys.events(this.keys.parseOpenMember(member))], [cutoff]);
    }
  }

  async close(): Promise<void> {
    this.closing.abort(serviceClosing());
    for (const tail of this.tails.values()) tail.stop.abort(serviceClosing());
    this.tails.clear();
    this.hub?.stop.abort(serviceClosing());
    await this.redis.quit().catch(() => undefined);
  }

  private async fetchAfter(key: StreamKey, afterSeq: bigint, limit: number): Promise<StreamEvent[]> {
    const entries = await this.redis.xrangeBuffer(this.keys.events(key), `(${afterSeq}-0`, "+", "COUNT", limit).catch(storeUnavailable);
    const events = entries.map(([id, flat]) => decodeEvent(entryOf(id, flat)));
    const first = events[0];
    if (!first) {
      if ((await this.redis.exists(this.keys.meta(key)).catch(storeUnavailable)) === 0) await this.notFoundOrLost(key);
      return [];
    }
    if (first.seq !== afterSeq + 1n) throw behindRetained(key.id, afterSeq, first.seq);
    return events;
  }

  /**
   * Hands just-stored events to this process's subscribers at once instead of after the XREAD round
   * trip. Only when they continue the window exactly; otherwise the XREAD loop delivers them as usual
   * (and ignores what was shown here already).
   */
  private showLocally(key: StreamKey, storedIndexes: readonly number[], events: readonly StreamEvent[], lastSeq: bigint): void {
    const tail = this.tails.get(tailKey(key));
    const firstSeq = lastSeq - BigInt(storedIndexes.length) + 1n;
    if (!tail || storedIndexes.length === 0 || tail.window.next !== Number(firstSeq)) return;
    for (const [k, index] of storedIndexes.entries()) {
      const event = events[index];
      if (event) tail.window.push({ ...event, seq: firstSeq + BigInt(k) });
    }
  }

  private async acquireTail(key: StreamKey): Promise<Tail> {
    const mapKey = tailKey(key);
    let tail = this.tails.get(mapKey);
    if (!tail) {
      const window = new EventWindow({
        maxEvents: this.options.retainedMaxEvents,
        maxBytes: Math.min(TAIL_WINDOW_BYTES, this.options.retainedMaxBytes),
      });
      const stop = new AbortController();
      tail = { window, stop, refs: 0, ready: this.startTail(key, window, stop) };
      this.tails.set(mapKey, tail);
    }
    tail.refs++;
    try {
      await tail.ready;
    } catch (err) {
      this.releaseTail(key, tail);
      throw err;
    }
    return tail;
  }

  /**
   * Reads the newest event, then follows the stream on a connection of its own. When that fails
   * (Redis lost, or the stream's data gone while it was open) every reader is told at once.
   */
  private async startTail(key: StreamKey, window: EventWindow, stop: AbortController): Promise<void> {
    const eventsKey = this.keys.events(key);
    const [newest] = await this.redis.xrevrangeBuffer(eventsKey, "+", "-", "COUNT", 1).catch(storeUnavailable);
    if (!newest) return this.notFoundOrLost(key);
    const last = decodeEvent(entryOf(newest[0], newest[1]));
    window.push(last);
    if (isTerminal(last)) return;
    const connection = await dedicatedConnection(this.redis).catch(storeUnavailable);
    const stillOpen = async (): Promise<void> => {
      // An open stream never expires: gone means Redis lost it (restarted empty, flushed, evicted).
      if ((await this.redis.exists(this.keys.meta(key))) === 0) throw streamDataLost(key.id, await this.dataSinceMs());
    };
    const onEntry = (entry: StreamEntry): boolean => {
      const event = decodeEvent(entry);
      window.push(event);
      return !isTerminal(event);
    };
    void followRedisStream(connection, eventsKey, `${last.seq}-0`, onEntry, stop.signal, stillOpen).catch((err: unknown) => this.dropTail(key, err));
  }

  private releaseTail(key: StreamKey, tail: Tail): void {
    if (--tail.refs > 0) return;
    tail.stop.abort();
    const mapKey = tailKey(key);
    if (this.tails.get(mapKey) === tail) this.tails.delete(mapKey);
  }

  /** Fails the readers of a tail whose connection failed; the next subscriber starts a fresh one. */
  private dropTail(key: StreamKey, err: unknown): void {
    const mapKey = tailKey(key);
    const tail = this.tails.get(mapKey);
    if (!tail) return;
    this.tails.delete(mapKey);
    tail.stop.abort(followInterrupted(err));
  }

  private announcementHub(): AnnouncementHub {
    if (this.hub) return this.hub;
    const watchers = new Set<Watcher>();
    const stop = new AbortController();
    const hub: AnnouncementHub = { watchers, stop, ready: this.followAnnouncements(watchers, stop) };
    this.hub = hub;
    const fail = (err: unknown): void => {
      if (this.hub === hub) this.hub = undefined;
      if (!stop.signal.aborted) stop.abort(followInterrupted(err));
      for (const watcher of watchers) watcher.queue.fail(stop.signal.reason);
    };
    hub.ready.catch(fail);
    stop.signal.addEventListener("abort", () => fail(stop.signal.reason), { once: true });
    return hub;
  }

  /** One connection per process follows the announcements and hands each to the watchers of its workspace. */
  private async followAnnouncements(watchers: ReadonlySet<Watcher>, stop: AbortController): Promise<void> {
    const [newest] = await this.redis.xrevrangeBuffer(this.keys.announcements, "+", "-", "COUNT", 1);
    const connection = await dedicatedConnection(this.redis);
    const onEntry = (entry: StreamEntry): boolean => {
      const workspace = entry.fields.get("w")?.toString("utf8");
      const announcement = fromBinary(WatchStreamsResponseSchema, entry.fields.get("a") ?? new Uint8Array());
      if (!announcement.stream) return true;
      for (const watcher of watchers) {
        if (watcher.workspace === workspace) {
          watcher.queue.push({ kind: announcement.kind, stream: clone(StreamInfoSchema, announcement.stream) });
        }
      }
      return true;
    };
    const fromId = newest ? String(newest[0]) : "0-0";
    void followRedisStream(connection, this.keys.announcements, fromId, onEntry, stop.signal).catch((err: unknown) => stop.abort(followInterrupted(err)));
  }
}

/** The consumer hash's fields (`a:`, `d:`, `s:`, `b:` + node id) as one state per node. */
function consumersOf(fields: Readonly<Record<string, string>>): Map<string, ConsumerState> {
  const states = new Map<string, ConsumerState>();
  for (const [field, value] of Object.entries(fields)) {
    const node = field.slice(2);
    const state = states.get(node) ?? NEVER_ATTACHED;
    const kind = field.slice(0, 2);
    if (kind === "a:") states.set(node, { ...state, attached: Number(value) });
    else if (kind === "d:") states.set(node, { ...state, detachedAtMs: Number(value) });
    else if (kind === "s:") states.set(node, { ...state, seq: BigInt(value) });
    else if (kind === "b:") states.set(node, { ...state, bytes: BigInt(value) });
  }
  return states;
}

function recordOf(meta: Record<string, Buffer> | undefined, firstEntryId: string | undefined, consumers: Record<string, string>): StreamRecord | undefined {
  if (!meta?.info) return undefined;
  const info = fromBinary(StreamInfoSchema, meta.info);
  info.state = Number(String(meta.state)) as StreamState;
  info.lastSeq = BigInt(String(meta.seq));
  info.bytesPublished = BigInt(String(meta.bytes));
  if (meta.ended) info.endedAt = timestampFromMs(Number(String(meta.ended)));
  info.firstRetainedSeq = firstEntryId ? seqOf(firstEntryId) : info.lastSeq;
  return { info, deadlineMs: Number(String(meta.deadline)), lastClientSeq: BigInt(String(meta.cseq)), consumers: consumersOf(consumers) };
}
