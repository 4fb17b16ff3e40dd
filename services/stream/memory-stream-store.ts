import { clone } from "@bufbuild/protobuf";
import { timestampFromMs } from "@bufbuild/protobuf/wkt";
import { Code } from "@connectrpc/connect";
import { StreamAnnouncementKind, type StreamEvent, type StreamInfo, StreamInfoSchema, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";
import { AsyncQueue } from "./async-queue.js";
import {
  behindRetained,
  maxDurationMessage,
  maxDurationReached,
  serviceClosing,
  streamEnded,
  streamNotFound,
  subscriberFellBehind,
  tooManyOpenStreams,
} from "./errors.js";
import { EventWindow } from "./event-window.js";
import { dataEvent, endingEvent, endingState, startEvent } from "./events.js";
import { follow } from "./follow.js";
import { matchesList } from "./list-filter.js";
import { NEVER_ATTACHED, withAttachment } from "./consumer-state.js";
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

interface MemoryStream {
  readonly info: StreamInfo;
  readonly deadlineMs: number;
  lastClientSeq: bigint;
  readonly window: EventWindow;
  readonly consumers: Map<string, ConsumerState>;
}

interface Watcher {
  readonly workspace: string;
  readonly queue: AsyncQueue<Announcement>;
}

const WATCH_BACKLOG = 10_000;

function mapKey(key: StreamKey): string {
  return `${key.workspace}\u0000${key.id}`;
}

/** The embedded store: every stream of this process in memory, nothing shared. */
export class MemoryStreamStore implements StreamStore {
  private readonly streams = new Map<string, MemoryStream>();
  private readonly openByOwner = new Map<string, number>();
  private readonly watchers = new Set<Watcher>();
  private readonly expiries = new Set<NodeJS.Timeout>();
  private readonly closing = new AbortController();

  constructor(private readonly retention: Retention) {}

  async create(info: StreamInfo, deadlineMs: number, maxOpenPerOwner: number, timeMs: number): Promise<StreamInfo> {
    const workspace = info.ref?.workspace ?? "";
    const ownerKey = `${workspace}\u0000${info.owner}`;
    const open = this.openByOwner.get(ownerKey) ?? 0;
    if (open >= maxOpenPerOwner) throw tooManyOpenStreams(info.owner, maxOpenPerOwner);
    const stored = clone(StreamInfoSchema, info);
    stored.state = StreamState.OPEN;
    stored.createdAt = timestampFromMs(timeMs);
    stored.lastSeq = 1n;
    stored.firstRetainedSeq = 1n;
    const window = new EventWindow({
      maxEvents: this.retention.retainedMaxEvents,
      maxBytes: this.retention.retainedMaxBytes,
    });
    window.push(startEvent(clone(StreamInfoSchema, stored), timeMs));
    this.streams.set(mapKey({ workspace, id: info.ref?.streamId ?? "" }), {
      info: stored,
      deadlineMs,
      lastClientSeq: 0n,
      window,
      consumers: new Map(),
    });
    this.openByOwner.set(ownerKey, open + 1);
    this.announce(StreamAnnouncementKind.AVAILABLE, stored);
    return this.snapshot(stored, window);
  }

  async get(key: StreamKey): Promise<StreamRecord | undefined> {
    const stream = this.streams.get(mapKey(key));
    if (!stream) return undefined;
    return {
      info: this.snapshot(stream.info, stream.window),
      deadlineMs: stream.deadlineMs,
      lastClientSeq: stream.lastClientSeq,
      consumers: new Map(stream.consumers),
    };
  }

  async list(workspace: string, query: ListQuery): Promise<ListPage> {
    const matching = [...this.streams.values()]
      .filter((s) => s.info.ref?.workspace === workspace && matchesList(s.info, query))
      .map((s) => s.info.ref?.streamId ?? "")
      .filter((id) => query.cursor === "" || id < query.cursor)
      .sort()
      .reverse();
    const page = matching.slice(0, query.pageSize);
    const streams = page.flatMap((id) => {
      const s = this.streams.get(mapKey({ workspace, id }));
      return s ? [this.snapshot(s.info, s.window)] : [];
    });
    const last = page[page.length - 1];
    return { streams, nextCursor: matching.length > page.length && last ? last : "" };
  }

  async append(key: StreamKey, payloads: readonly PayloadInput[], timeMs: number): Promise<AppendResult> {
    const stream = this.openStream(key);
    if (timeMs >= stream.deadlineMs) {
      await this.end(key, { error: { message: maxDurationMessage(stream.deadlineMs), code: Code.DeadlineExceeded } }, timeMs);
      throw maxDurationReached(key.id, stream.deadlineMs);
    }
    let appended = 0;
    let appendedBytes = 0;
    for (const payload of payloads) {
      if (payload.clientSeq !== 0n && payload.clientSeq <= stream.lastClientSeq) continue;
      stream.info.lastSeq++;
      stream.window.push(dataEvent(stream.info.lastSeq, payload, stream.info.bytesPublished, timeMs));
      if (payload.clientSeq !== 0n) stream.lastClientSeq = payload.clientSeq;
      stream.info.bytesPublished += BigInt(payload.data.byteLength);
      appended++;
      appendedBytes += payload.data.byteLength;
    }
    stream.window.trimOlderThan(timeMs - this.retention.retainedMs);
    return { lastSeq: stream.info.lastSeq, lastClientSeq: stream.lastClientSeq, appended, appendedBytes };
  }

  async end(key: StreamKey, ending: Ending, timeMs: number): Promise<StreamInfo> {
    const stream = this.openStream(key);
    stream.info.lastSeq++;
    stream.window.push(endingEvent(stream.info.lastSeq, stream.info.bytesPublished, ending, timeMs));
    stream.info.state = endingState(ending);
    stream.info.endedAt = timestampFromMs(timeMs);
    const ownerKey = `${key.workspace}\u0000${stream.info.owner}`;
    this.openByOwner.set(ownerKey, (this.openByOwner.get(ownerKey) ?? 1) - 1);
    const expiry = setTimeout(() => {
      this.expiries.delete(expiry);
      this.streams.delete(mapKey(key));
    }, this.retention.endedTtlMs);
    expiry.unref();
    this.expiries.add(expiry);
    this.announce(StreamAnnouncementKind.ENDED, stream.info);
    return this.snapshot(stream.info, stream.window);
  }

  async consumerAttached(key: StreamKey, nodeId: string, attached: boolean, timeMs: number): Promise<void> {
    const stream = this.streams.get(mapKey(key));
    if (stream) stream.consumers.set(nodeId, withAttachment(stream.consumers.get(nodeId), attached, timeMs));
  }

  async consumerAdvanced(key: StreamKey, nodeId: string, seq: bigint, bytes: bigint): Promise<void> {
    const stream = this.streams.get(mapKey(key));
    const state = stream?.consumers.get(nodeId) ?? NEVER_ATTACHED;
    if (stream && seq > state.seq) stream.consumers.set(nodeId, { ...state, seq, bytes });
  }

  async events(key: StreamKey, afterSeq: bigint, signal: AbortSignal, lagLimited = true): Promise<AsyncIterable<StreamEvent>> {
    const stream = this.streams.get(mapKey(key));
    if (!stream) throw streamNotFound(key.id);
    const { window } = stream;
    return follow(
      {
        window,
        fetchAfter: (after) => Promise.reject(behindRetained(key.id, after, BigInt(window.first ?? 1))),
        maxLagBytes: lagLimited ? this.retention.subscriberMaxLagBytes : Infinity,
        fellBehind: (lastSeq) => subscriberFellBehind(key.id, this.retention.subscriberMaxLagBytes, lastSeq, BigInt(window.first ?? 1)),
      },
      afterSeq,
      AbortSignal.any([signal, this.closing.signal]),
    );
  }

  async announcements(workspace: string, signal: AbortSignal): Promise<AsyncIterable<Announcement>> {
    const watcher: Watcher = {
      workspace,
      queue: new AsyncQueue<Announcement>(WATCH_BACKLOG, () => this.watchers.delete(watcher)),
    };
    const stop = AbortSignal.any([signal, this.closing.signal]);
    stop.addEventListener("abort", () => watcher.queue.fail(stop.reason), { once: true });
    this.watchers.add(watcher);
    return watcher.queue;
  }

  async overdue(nowMs: number): Promise<StreamKey[]> {
    return [...this.streams.values()]
      .filter((s) => s.info.state === StreamState.OPEN && s.deadlineMs <= nowMs)
      .map((s) => ({ workspace: s.info.ref?.workspace ?? "", id: s.info.ref?.streamId ?? "" }));
  }

  async countOpen(): Promise<number> {
    let open = 0;
    for (const s of this.streams.values()) if (s.info.state === StreamState.OPEN) open++;
    return open;
  }

  async trim(nowMs: number): Promise<void> {
    for (const s of this.streams.values()) s.window.trimOlderThan(nowMs - this.retention.retainedMs);
  }

  async close(): Promise<void> {
    this.closing.abort(serviceClosing());
    for (const timer of this.expiries) clearTimeout(timer);
    this.expiries.clear();
  }

  private openStream(key: StreamKey): MemoryStream {
    const stream = this.streams.get(mapKey(key));
    if (!stream) throw streamNotFound(key.id);
    if (stream.info.state !== StreamState.OPEN) throw streamEnded(key.id, stream.info.state);
    return stream;
  }

  private snapshot(info: StreamInfo, window: EventWindow): StreamInfo {
    const copy = clone(StreamInfoSchema, info);
    copy.firstRetainedSeq = BigInt(window.first ?? 1);
    return copy;
  }

  private announce(kind: StreamAnnouncementKind, info: StreamInfo): void {
    const workspace = info.ref?.workspace;
    for (const watcher of this.watchers) {
      if (watcher.workspace === workspace) watcher.queue.push({ kind, stream: clone(StreamInfoSchema, info) });
    }
  }
}
