/**
 * The one worker pool: at most `concurrency` calls in flight over a list or a stream of items,
 * pulled only as workers free up (so a listing of a million keys is never held at once), stopping
 * at the first failure or on abort. Used by sync and audit, image backfills, avatar checks, the
 * contract suite and uploads in parts.
 */
import { throwIfAborted } from './errors.js';

/**
 * Runs `worker` over the items of an (async) iterable with at most `concurrency` at a time, each
 * with its index. After the first failure, or once `signal` fires, no further item is pulled; the
 * workers already running are awaited, then the first failure is thrown. An abort alone resolves
 * (the caller decides what an interruption means: {@link mapConcurrent} rejects).
 */
export async function forEachConcurrent<T>(
  items: AsyncIterable<T> | Iterable<T>,
  concurrency: number,
  worker: (item: T, index: number) => Promise<void>,
  signal?: AbortSignal,
): Promise<void> {
  const iterator = (Symbol.asyncIterator in items ? (items as AsyncIterable<T>)[Symbol.asyncIterator]() : (items as Iterable<T>)[Symbol.iterator]()) as
    AsyncIterator<T> | Iterator<T>;
  let failed: unknown;
  let done = false;
  let index = 0;
  // Pulls are serialised: async iterators must not be advanced concurrently.
  let pulling: Promise<unknown> = Promise.resolve();
  // Each item's index is taken as it is pulled, so indexes follow the order of the items.
  const next = (): Promise<{ item: IteratorResult<T>; index: number }> => {
    const result = pulling.then(async () => {
      const item = await iterator.next();
      return { item, index: item.done ? -1 : index++ };
    });
    pulling = result.catch(() => undefined);
    return result;
  };
  const lanes = Array.from({ length: Math.max(1, concurrency) }, async () => {
    while (!done && failed === undefined && !signal?.aborted) {
      const { item, index: itemIndex } = await next();
      if (signal?.aborted) return;
      if (item.done) {
        done = true;
        return;
      }
      try {
        await worker(item.value, itemIndex);
      } catch (err) {
        failed ??= err;
      }
    }
  });
  await Promise.all(lanes);
  if (failed !== undefined) throw failed;
}

/**
 * `items` mapped by `fn`, at most `concurrency` at a time, results in the order of `items`.
 * Rejects with the first failure (once the calls in flight settled) or, when `signal` fired
 * before every item ran, with ABORTED.
 */
export async function mapConcurrent<T, R>(
  items: readonly T[],
  concurrency: number,
  fn: (item: T, index: number) => Promise<R>,
  signal?: AbortSignal,
): Promise<R[]> {
  const results = new Array<R>(items.length);
  let ran = 0;
  await forEachConcurrent(
    items,
    concurrency,
    async (item, index) => {
      results[index] = await fn(item, index);
      ran++;
    },
    signal,
  );
  if (ran < items.length) throwIfAborted(signal, 'pool');
  return results;
}
