/**
 * Items of several async iterables as they arrive, until all end. Stopping early asks each source to
 * return without waiting for it: a source blocked on I/O settles when its own signal aborts.
 */
export async function* merge<T>(sources: readonly AsyncIterable<T>[]): AsyncGenerator<T> {
  const iterators = sources.map((source) => source[Symbol.asyncIterator]());
  const pending = new Map<number, Promise<{ index: number; result: IteratorResult<T> }>>();
  const pull = (index: number) => {
    const iterator = iterators[index];
    if (iterator)
      pending.set(
        index,
        iterator.next().then((result) => ({ index, result })),
      );
  };
  iterators.forEach((_, index) => pull(index));
  try {
    while (pending.size > 0) {
      const { index, result } = await Promise.race(pending.values());
      if (result.done) {
        pending.delete(index);
        continue;
      }
      pull(index);
      yield result.value;
    }
  } finally {
    for (const iterator of iterators) void iterator.return?.()?.catch(() => undefined);
    for (const next of pending.values()) void next.catch(() => undefined);
  }
}
