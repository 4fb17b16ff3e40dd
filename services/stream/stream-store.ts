import type { Code } from "@connectrpc/connect";
import type { StreamAnnouncementKind, StreamEvent, StreamInfo, StreamState } from "../../gen/mentatlab/v1/stream_pb.js";

/** How much of each stream is kept for resuming subscribers, and for how long after it ends. */
export interface Retention {
  readonly retainedMs: number;
  readonly retainedMaxEvents: number;
  /** Payload bytes held in process memory per stream. */
  readonly retainedMaxBytes: number;
  readonly endedTtlMs: number;
  /** Payload bytes a live subscriber may fall behind the newest event before it gets OUT_OF_RANGE. */
  readonly subscriberMaxLagBytes: number;
}

/** Identifies a stream; every lookup is scoped to its workspace so one never sees another's. */
export interface StreamKey {
  readonly workspace: string;
  readonly id: string;
}

/** `key` as one string, for maps keyed by stream (NUL cannot occur in a workspace or stream id). */
export function streamKeyString(key: StreamKey): string {
  return `${key.workspace}\u0000${key.id}`;
}

/** What the store knows about a stream beyond its public description. */
export interface StreamRecord {
  /** Public description, with the counters (last_seq, bytes, first retained seq) current. */
  readonly info: StreamInfo;
  /** When the stream must be ended, ms since the epoch. */
  readonly deadlineMs: number;
  /** Newest producer sequence number stored; payloads at or below it are dropped as re-sends. */
  readonly lastClientSeq: bigint;
  /** Where each declared consumer (StreamInfo.consumers) that ever subscribed has got to, by node id. */
  readonly consumers: ReadonlyMap<string, ConsumerState>;
}

/** How far a declared consumer, a downstream agent of the stream's run, has read, and whether it is attached. */
export interface ConsumerState {
  /** Seq of the newest event handed to one of its subscriptions. */
  readonly seq: bigint;
  /** Payload bytes of the stream up to and including that event. */
  readonly bytes: bigint;
  /** Its subscriptions open now (in every process). */
  readonly attached: number;
  /** When its last subscription ended, ms since the epoch; 0 while attached or before any. */
  readonly detachedAtMs: number;
}

/** A payload to append as one stream_data event. */
export interface PayloadInput {
  readonly data: Uint8Array;
  /** Producer's sequence number; 0 means "not given" (no de-duplication for this payload). */
  readonly clientSeq: bigint;
  readonly attributes: Readonly<Record<string, string>>;
}

export interface AppendResult {
  readonly lastSeq: bigint;
  readonly lastClientSeq: bigint;
  /** Payloads stored by this call (re-sent ones are not counted). */
  readonly appended: number;
  /** Payload bytes stored by this call. */
  readonly appendedBytes: number;
}

/** How a stream ends: normally, or with an error every subscriber receives. */
export interface Ending {
  readonly error?: { readonly message: string; readonly code: Code };
}

export interface Announcement {
  readonly kind: StreamAnnouncementKind;
  readonly stream: StreamInfo;
}

export interface ListQuery {
  readonly runId?: string;
  readonly owner?: string;
  readonly states?: readonly StreamState[];
  readonly pageSize: number;
  /** Opaque cursor from a previous page; empty for the first. */
  readonly cursor: string;
}

export interface ListPage {
  readonly streams: StreamInfo[];
  /** Cursor of the next page; empty at the end. */
  readonly nextCursor: string;
}

/**
 * Where streams live: their description, their retained events and the announcements of streams
 * opening and ending. Backends assign gap-free sequence numbers atomically, de-duplicate re-sent
 * payloads by client sequence number, and throw ConnectErrors (errors.ts) with the right code.
 */
export interface StreamStore {
  /**
   * Stores a new stream from `info` (id, workspace, owner, ...) with stream_start as seq 1 and
   * announces it. Throws RESOURCE_EXHAUSTED when the owner already has `maxOpenPerOwner` open streams.
   */
  create(info: StreamInfo, deadlineMs: number, maxOpenPerOwner: number, timeMs: number): Promise<StreamInfo>;
  get(key: StreamKey): Promise<StreamRecord | undefined>;
  /** The workspace's streams, newest first. */
  list(workspace: string, query: ListQuery): Promise<ListPage>;
  /**
   * Appends payloads in order as stream_data events. NOT_FOUND for an unknown stream,
   * FAILED_PRECONDITION once it ended, DEADLINE_EXCEEDED (after ending it with stream_error) once its
   * deadline passed.
   */
  append(key: StreamKey, payloads: readonly PayloadInput[], timeMs: number): Promise<AppendResult>;
  /** Appends stream_end or stream_error and announces the end. FAILED_PRECONDITION if already ended. */
  end(key: StreamKey, ending: Ending, timeMs: number): Promise<StreamInfo>;
  /**
   * Events after `afterSeq`: first the retained ones, then live ones, ending after stream_end or
   * stream_error. NOT_FOUND (from the promise) for an unknown stream; OUT_OF_RANGE (from the iterable),
   * naming the oldest retained seq, if events after `afterSeq` were trimmed, or, when `lagLimited`, once
   * the follower falls more than `subscriberMaxLagBytes` behind (a consumer whose producer is held back
   * for it, or which fails the stream, is not).
   */
  events(key: StreamKey, afterSeq: bigint, signal: AbortSignal, lagLimited?: boolean): Promise<AsyncIterable<StreamEvent>>;
  /** Live announcements of the workspace, from the moment the returned promise resolves. */
  announcements(workspace: string, signal: AbortSignal): Promise<AsyncIterable<Announcement>>;
  /** A subscription of declared consumer `nodeId` began (`attached`) or ended. */
  consumerAttached(key: StreamKey, nodeId: string, attached: boolean, timeMs: number): Promise<void>;
  /**
   * Declared consumer `nodeId` was handed the events up to `seq`, `bytes` payload bytes into the
   * stream. Its position only moves forward: a subscription resuming from further back leaves it.
   */
  consumerAdvanced(key: StreamKey, nodeId: string, seq: bigint, bytes: bigint): Promise<void>;
  /** Open streams whose deadline is at or before `nowMs`. */
  overdue(nowMs: number): Promise<StreamKey[]>;
  /** Open streams in every workspace. */
  countOpen(): Promise<number>;
  /** Drops events older than the retention time (the newest event of a stream is always kept). */
  trim(nowMs: number): Promise<void>;
  close(): Promise<void>;
}
