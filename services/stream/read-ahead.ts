import { type Deferred, deferred } from "../shared/deferred.js";

/**
 * Pulls a client stream ahead of its handler, up to `maxBytes` buffered, so messages that arrive while
 * the handler awaits storage are taken together as one batch instead of one round trip each. Past
 * `maxBytes` it stops reading, which backpressures the client through HTTP/2 flow control.
 */
export class ReadAhead<T> {
  private readonly buffered: T[] = [];
  private bytes = 0;
  private finished = false;
  private failure: { readonly reason: unknown } | undefined;
  private consumerWake: Deferred<void> | undefined;
  private producerWake: Deferred<void> | undefined;

  constructor(
    source: AsyncIterator<T>,
    private readonly sizeOf: (item: T) => number,
    private readonly maxBytes: number,
  ) {
    void this.pump(source);
  }

  /**
   * The next items that arrived, at least one and at most `maxItems`, and past the first no more than
   * `maxBytes` together; undefined once the stream ended.
   */
  async nextBatch(maxItems: number, maxBytes = Infinity): Promise<T[] | undefined> {
    while (this.buffered.length === 0 && !this.finished && !this.failure) {
      this.consumerWake = deferred();
      await this.consumerWake.promise;
    }
    if (this.buffered.length === 0) {
      if (this.failure) throw this.failure.reason;
      return undefined;
    }
    let count = 0;
    let batchBytes = 0;
    for (const item of this.buffered) {
      const size = this.sizeOf(item);
      if (count === maxItems || (count > 0 && batchBytes + size > maxBytes)) break;
      count++;
      batchBytes += size;
    }
    const batch = this.buffered.splice(0, count);
    this.bytes -= batchBytes;
    this.producerWake?.resolve();
    return batch;
  }

  private async pump(source: AsyncIterator<T>): Promise<void> {
    try {
      for (;;) {
        const result = await source.next();
        if (result.done) break;
        this.buffered.push(result.value);
        this.bytes += this.sizeOf(result.value);
        this.consumerWake?.resolve();
        while (this.bytes >= this.maxBytes) {
          this.producerWake = deferred();
          await this.producerWake.promise;
        }
      }
      this.finished = true;
    } catch (reason) {
      this.failure = { reason };
    } finally {
      this.consumerWake?.resolve();
    }
  }
}
