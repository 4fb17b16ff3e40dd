import { Code, ConnectError } from "@connectrpc/connect";
import { type Deferred, deferred } from "../shared/deferred.js";

/**
 * A bounded push-to-pull queue for one consumer of live notifications. A consumer that lets more than
 * `maxItems` pile up is failed rather than allowed to grow memory without bound.
 */
export class AsyncQueue<T> implements AsyncIterable<T> {
  private items: T[] = [];
  private failure: unknown;
  private waiting: Deferred<void> | undefined;

  constructor(
    private readonly maxItems: number,
    private readonly onDone: () => void,
  ) {}

  push(item: T): void {
    if (this.failure !== undefined) return;
    if (this.items.length >= this.maxItems) {
      this.fail(new ConnectError(`consumer fell more than ${this.maxItems} notifications behind; reconnect`, Code.ResourceExhausted));
      return;
    }
    this.items.push(item);
    this.waiting?.resolve();
  }

  fail(reason: unknown): void {
    if (this.failure !== undefined) return;
    this.failure = reason;
    this.waiting?.resolve();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    try {
      for (;;) {
        const item = this.items.shift();
        if (item !== undefined) {
          yield item;
          continue;
        }
        if (this.failure !== undefined) throw this.failure;
        this.waiting = deferred();
        await this.waiting.promise;
        this.waiting = undefined;
      }
    } finally {
      this.onDone();
    }
  }
}
