/**
 * Runs `worker` over the items of an (async) iterable with at most `concurrency` at a time. Once
 * `signal` fires no further item is pulled; the workers already running are awaited.
 */
export async function forEachConcurrent<T>(items: AsyncIterable<T> | Iterable<T>, concurrency: number, worker: (item: T) => Promise<void>, signal?: AbortSignal): Promise<void> {
  const iterator = (Symbol.asyncIterator in items ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]()) as AsyncIterator<T> | Iterator<T>;
  let failed: unknown;
  let done = false;
  // Pulls are serialised: async iterators must not be advanced concurrently.
  let pulling: Promise<unknown> = Promise.resolve();
  const next = (): Promise<IteratorResult<T>> => {
    const result = pulling.then(() => iterator.next());
    pulling = result.catch(() => undefined);
    return result;
  };
  const lanes = Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (!done && failed === undefined && !signal?.aborted) {
      const item = await next();
      if (signal?.aborted) return;
      if (item.done) {
        done = true;
        return;
      }
      try {
        await worker(item.value);
      } catch (err) {
        failed ??= err;
      }
    }
  });
  await Promise.all(lanes);
  if (failed !== undefined) throw failed;
}
