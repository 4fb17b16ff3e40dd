/**
 * A push-to-pull queue for one consumer: what is pushed is yielded in order, and the iteration
 * finishes once `end()` was called and everything before it was taken. Unbounded: for producers
 * whose pace the consumer sets (a test feeding a request stream, one watch request's callbacks).
 */
export class Pushable<T> implements AsyncIterable<T> {
  private readonly items: T[] = [];
  private wake: (() => void) | undefined;
  protected ended = false;

  push(item: T): void {
    if (this.ended) return;
    this.items.push(item);
    this.wake?.();
  }

  end(): void {
    if (this.ended) return;
    this.ended = true;
    this.wake?.();
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<T> {
    for (;;) {
      const item = this.items.shift();
      if (item !== undefined) {
        yield item;
        continue;
      }
      if (this.ended) return;
      await new Promise<void>((resolve) => (this.wake = resolve));
      this.wake = undefined;
    }
  }
}
