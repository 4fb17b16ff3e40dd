import { open, rm, type FileHandle } from "node:fs/promises";

export interface SpillQueueOptions {
  /** Bytes of unacknowledged payload kept in memory; beyond this, payloads go to `spillPath`. */
  readonly memoryBytes: number;
  /** Bytes of unacknowledged payload (memory + disk) after which `push` waits for acknowledgements. */
  readonly capacityBytes: number;
  /** File that holds payloads beyond the memory bound; created on first spill, removed by `dispose`. */
  readonly spillPath: string;
}

interface Entry {
  readonly length: number;
  /** Set for payloads kept in memory. */
  readonly bytes?: Uint8Array;
  /** Position in the spill file for payloads on disk. */
  readonly fileOffset: number;
}

/**
 * The payloads of one output stream that the stream service has not acknowledged yet, numbered from 1
 * (the producer's client_seq). Bounded: payloads past the memory bound are appended to a spill file, and
 * past the capacity `push` waits, so a producer faster than the network gets backpressure, never an
 * unbounded heap. Acknowledged payloads are dropped; the spill file starts over once nothing on disk is
 * still needed.
 */
export class SpillQueue {
  private readonly entries: Entry[] = [];
  private head = 0;
  private acked = 0n;
  private memoryUsed = 0;
  private totalUsed = 0;
  private diskEntries = 0;
  private spillFile: FileHandle | undefined;
  private spillEnd = 0;
  private closed = false;
  private failure: Error | undefined;
  private appendChain: Promise<unknown> = Promise.resolve();
  private waiters: Array<() => void> = [];

  constructor(private readonly options: SpillQueueOptions) {}

  /** Sequence number of the newest payload pushed. */
  get lastSeq(): bigint {
    return this.acked + BigInt(this.entries.length - this.head);
  }

  /** Sequence number of the newest payload acknowledged. */
  get ackedSeq(): bigint {
    return this.acked;
  }

  /** True once `close` was called: no more pushes. */
  get isClosed(): boolean {
    return this.closed;
  }

  /** Bytes waiting for acknowledgement, in memory and on disk. */
  get bufferedBytes(): number {
    return this.totalUsed;
  }

  /** Bytes waiting for acknowledgement on disk. */
  get spilledBytes(): number {
    return this.totalUsed - this.memoryUsed;
  }

  /** Appends a payload once there is room for it; resolves with its sequence number. */
  push(data: Uint8Array): Promise<bigint> {
    if (this.closed) return Promise.reject(new Error("stream already closed: no more writes"));
    const appended = this.appendChain.then(() => this.append(data));
    this.appendChain = appended.catch(() => undefined);
    return appended;
  }

  /** A payload not yet acknowledged. */
  async read(seq: bigint): Promise<Uint8Array> {
    const entry = this.entries[this.head + Number(seq - this.acked - 1n)];
    if (seq <= this.acked || !entry) throw new Error(`payload ${seq} is not buffered (acknowledged up to ${this.acked})`);
    if (entry.bytes) return entry.bytes;
    const bytes = new Uint8Array(entry.length);
    await this.spillFile?.read(bytes, 0, entry.length, entry.fileOffset);
    return bytes;
  }

  /** Drops every payload up to and including `seq`, making room for more. */
  ack(seq: bigint): void {
    const upTo = seq < this.lastSeq ? seq : this.lastSeq;
    while (this.acked < upTo) {
      const entry = this.entries[this.head];
      if (!entry) break;
      this.head++;
      this.acked++;
      this.totalUsed -= entry.length;
      if (entry.bytes) this.memoryUsed -= entry.length;
      else this.diskEntries--;
    }
    if (this.head > 1024 && this.head * 2 > this.entries.length) {
      this.entries.splice(0, this.head);
      this.head = 0;
    }
    this.wake();
  }

  /** Resolves when a payload after `seq` exists, the queue is closed or failed, or `signal` aborts. */
  async waitForMore(seq: bigint, signal: AbortSignal): Promise<void> {
    if (this.lastSeq > seq || this.closed || this.failure || signal.aborted) return;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        signal.removeEventListener("abort", done);
        resolve();
      };
      signal.addEventListener("abort", done, { once: true });
      this.waiters.push(done);
    });
  }

  /** Resolves when every payload pushed so far is acknowledged (or the queue failed). */
  async drained(): Promise<void> {
    while (this.acked < this.lastSeq && !this.failure) {
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure) throw this.failure;
  }

  /** No more pushes; senders finish once everything is acknowledged. */
  close(): void {
    this.closed = true;
    this.wake();
  }

  /** Rejects waiting and future pushes with `error`. */
  fail(error: Error): void {
    this.failure ??= error;
    this.closed = true;
    this.wake();
  }

  /** Removes the spill file. */
  async dispose(): Promise<void> {
    await this.spillFile?.close();
    this.spillFile = undefined;
    await rm(this.options.spillPath, { force: true });
  }

  private async append(data: Uint8Array): Promise<bigint> {
    // A payload larger than the whole capacity is let through alone rather than deadlocking.
    while (this.totalUsed > 0 && this.totalUsed + data.length > this.options.capacityBytes) {
      if (this.failure) throw this.failure;
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
    if (this.failure) throw this.failure;
    if (this.memoryUsed + data.length <= this.options.memoryBytes) {
      // Copy: the caller's buffer may be reused once push resolves.
      this.entries.push({ length: data.length, bytes: data.slice(), fileOffset: 0 });
      this.memoryUsed += data.length;
    } else {
      this.spillFile ??= await open(this.options.spillPath, "w+");
      if (this.diskEntries === 0 && this.spillEnd > 0) {
        // Nothing on disk is needed any more: start the file over instead of growing it forever. Done
        // here, in the serialized append path, so no write can race the truncation.
        await this.spillFile.truncate(0);
        this.spillEnd = 0;
      }
      const fileOffset = this.spillEnd;
      this.spillEnd += data.length;
      // Counted before the write so an ack meanwhile does not truncate the file under it.
      this.diskEntries++;
      try {
        await this.spillFile.write(data, 0, data.length, fileOffset);
      } catch (error) {
        this.diskEntries--;
        throw error;
      }
      this.entries.push({ length: data.length, fileOffset });
    }
    this.totalUsed += data.length;
    this.wake();
    return this.lastSeq;
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const waiter of waiters) waiter();
  }
}
