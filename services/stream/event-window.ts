import type { StreamEvent } from "../../gen/mentatlab/v1/stream_pb.js";
import { deferred } from "../shared/deferred.js";

export interface WindowLimits {
  readonly maxEvents: number;
  readonly maxBytes: number;
}

function payloadBytes(event: StreamEvent): number {
  return event.event.case === "data" ? event.event.value.data.byteLength : 0;
}

function timeMs(event: StreamEvent): number {
  const t = event.time;
  return t ? Number(t.seconds) * 1000 + Math.floor(t.nanos / 1e6) : 0;
}

/**
 * The newest events of one stream, contiguous by seq, bounded by count and bytes, with a way to wait
 * for the next one. Subscribers read it by seq instead of each holding a queue, so a slow subscriber
 * costs nothing and one wake-up serves every subscriber. The newest event is never dropped.
 *
 * Readers are woken in a later turn of the event loop (setImmediate), never inside `push`: the
 * publisher's acknowledgement leaves in the turn that stored the event, before any fan-out work, and
 * everything pushed in one turn reaches each reader in one wake-up.
 */
export class EventWindow {
  // Dropped slots are cleared so their payloads can be collected before the next compaction.
  private events: (StreamEvent | undefined)[] = [];
  // Payload bytes pushed up to and including each held event, so a reader's lag costs two lookups.
  private ends: number[] = [];
  private head = 0;
  private firstSeq: number | undefined;
  private bytes = 0;
  private pushedBytes = 0;
  // pushedBytes when readers were woken before the latest wake-up: what they have had a whole turn to read.
  private settledBytes = 0;
  private announcedBytes = 0;
  private wake = deferred();
  private wakeScheduled = false;

  constructor(private readonly limits: WindowLimits) {}

  /** Seq of the oldest event held, or of the next expected one while empty; undefined before any. */
  get first(): number | undefined {
    return this.firstSeq;
  }

  /** Seq the next pushed event is expected to have; undefined before any. */
  get next(): number | undefined {
    return this.firstSeq === undefined ? undefined : this.firstSeq + this.size;
  }

  get size(): number {
    return this.events.length - this.head;
  }

  /** Empties the window, expecting `nextSeq` next. */
  startAt(nextSeq: number): void {
    this.events = [];
    this.ends = [];
    this.head = 0;
    this.bytes = 0;
    this.firstSeq = nextSeq;
  }

  /**
   * Adds the next event. An event already held (seq below `next`) is ignored; one past a gap restarts
   * the window at it (readers refill from the store).
   */
  push(event: StreamEvent): void {
    const seq = Number(event.seq);
    const next = this.next;
    if (next !== undefined && seq < next) return;
    if (next !== seq) this.startAt(seq);
    const bytes = payloadBytes(event);
    this.events.push(event);
    this.pushedBytes += bytes;
    this.ends.push(this.pushedBytes);
    this.bytes += bytes;
    while (this.size > 1 && (this.size > this.limits.maxEvents || this.bytes > this.limits.maxBytes)) {
      this.dropOldest();
    }
    if (this.wakeScheduled) return;
    this.wakeScheduled = true;
    setImmediate(() => {
      this.wakeScheduled = false;
      this.settledBytes = this.announcedBytes;
      this.announcedBytes = this.pushedBytes;
      const woken = this.wake;
      this.wake = deferred();
      woken.resolve();
    });
  }

  at(seq: number): StreamEvent | undefined {
    if (this.firstSeq === undefined || seq < this.firstSeq) return undefined;
    return this.events[this.head + seq - this.firstSeq];
  }

  /**
   * How far a reader whose next event is `seq` is behind, in payload bytes: those from `seq` on that
   * readers were woken for at least one wake-up ago. A reader that takes what each wake-up brings
   * before the next one is never behind, however large a burst; 0 when `seq` is not held.
   */
  bytesBehind(seq: number): number {
    if (this.firstSeq === undefined || seq < this.firstSeq || seq >= this.firstSeq + this.size) return 0;
    const index = this.head + seq - this.firstSeq;
    const event = this.events[index];
    const end = this.ends[index];
    if (event === undefined || end === undefined) return 0;
    return Math.max(0, this.settledBytes - (end - payloadBytes(event)));
  }

  /** Drops events stored before `cutoffMs`, keeping the newest. */
  trimOlderThan(cutoffMs: number): void {
    while (this.size > 1) {
      const oldest = this.events[this.head];
      if (oldest === undefined || timeMs(oldest) >= cutoffMs) return;
      this.dropOldest();
    }
  }

  /** Resolves in the event-loop turn after the next push; one promise shared by every waiting reader. */
  changed(): Promise<void> {
    return this.wake.promise;
  }

  private dropOldest(): void {
    const oldest = this.events[this.head];
    if (oldest) this.bytes -= payloadBytes(oldest);
    this.events[this.head] = undefined;
    this.head++;
    if (this.firstSeq !== undefined) this.firstSeq++;
    // Compact lazily so dropping stays O(1) amortised.
    if (this.head > 1024 && this.head * 2 > this.events.length) {
      this.events = this.events.slice(this.head);
      this.ends = this.ends.slice(this.head);
      this.head = 0;
    }
  }
}

export function isTerminal(event: StreamEvent): boolean {
  return event.event.case === "end" || event.event.case === "error";
}
