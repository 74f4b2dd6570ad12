/**
 * Streams in key order, in bounded memory: what `syncStorages` merges and `auditKeys` walks.
 * A listing of a backend that lists in key order is checked as it goes; one that does not
 * (`capabilities.sortedListing: false`) is sorted through temp files, a run at a time.
 */
import { createReadStream } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { MediaStorageError } from '../core/errors.js';
import { compareKeys } from '../core/keys.js';
import type { MediaStorage, ObjectInfo, SkippedObject } from '../core/types.js';

/** Items held in memory before a sorted run goes to a temp file. */
const DEFAULT_RUN_SIZE = 50_000;
/** Characters of run lines gathered before one write. */
const WRITE_CHUNK = 1 << 20;

export interface ExternalSortOptions<T> {
  /** The string items are ordered by, with {@link compareKeys}. */
  key: (item: T) => string;
  /** Items sorted in memory before a run is written to disk; default 50,000. */
  runSize?: number;
  /** One line per item (no line break in it); default JSON. */
  encode?: (item: T) => string;
  decode?: (line: string) => T;
  /** Parent folder of the temp folder; default the OS temp folder (`TMPDIR`). */
  tempDir?: string;
}

/**
 * `items` in key order (ties in no particular order). Up to `runSize` items are sorted in memory;
 * more are written as sorted runs to a temp folder and merged from there, so memory stays at one
 * run however many items there are. The temp folder is removed when the iteration ends, however it ends.
 */
export async function* sortExternally<T>(items: AsyncIterable<T> | Iterable<T>, options: ExternalSortOptions<T>): AsyncGenerator<T> {
  const runSize = Math.max(1, options.runSize ?? DEFAULT_RUN_SIZE);
  const encode = options.encode ?? ((item: T) => JSON.stringify(item));
  const decode = options.decode ?? ((line: string) => JSON.parse(line) as T);
  const byKey = (a: T, b: T): number => compareKeys(options.key(a), options.key(b));
  let dir: string | undefined;
  const runs: string[] = [];
  const writeRun = async (run: T[]): Promise<void> => {
    run.sort(byKey);
    dir ??= await mkdtemp(path.join(options.tempDir ?? os.tmpdir(), 'media-storage-sort-'));
    const file = path.join(dir, `run-${runs.length}`);
    const handle = await open(file, 'w');
    try {
      let chunk = '';
      for (const item of run) {
        chunk += `${encode(item)}\n`;
        if (chunk.length >= WRITE_CHUNK) {
          await handle.write(chunk);
          chunk = '';
        }
      }
      if (chunk) await handle.write(chunk);
    } finally {
      await handle.close();
    }
    runs.push(file);
  };
  try {
    let run: T[] = [];
    for await (const item of items) {
      run.push(item);
      if (run.length >= runSize) {
        await writeRun(run);
        run = [];
      }
    }
    if (runs.length === 0) {
      yield* run.sort(byKey);
      return;
    }
    if (run.length > 0) await writeRun(run);
    run = [];
    yield* mergeRuns(runs, decode, byKey);
  } finally {
    if (dir) await rm(dir, { recursive: true, force: true });
  }
}

/** The k-way merge of sorted run files (k is small: items / runSize). */
async function* mergeRuns<T>(files: readonly string[], decode: (line: string) => T, byKey: (a: T, b: T) => number): AsyncGenerator<T> {
  const readers = files.map((file) => createInterface({ input: createReadStream(file, { encoding: 'utf8' }), crlfDelay: Infinity })[Symbol.asyncIterator]());
  try {
    const heads: (T | undefined)[] = await Promise.all(
      readers.map(async (reader) => {
        const first = await reader.next();
        return first.done ? undefined : decode(first.value);
      }),
    );
    for (;;) {
      let best = -1;
      for (let i = 0; i < heads.length; i++) {
        if (heads[i] !== undefined && (best < 0 || byKey(heads[i]!, heads[best]!) < 0)) best = i;
      }
      if (best < 0) return;
      yield heads[best]!;
      const next = await readers[best]!.next();
      heads[best] = next.done ? undefined : decode(next.value);
    }
  } finally {
    await Promise.all(readers.map(async (reader) => reader.return?.()));
  }
}

export interface KeyOrderedOptions {
  /** Called with each object the listing skipped (see `ListPage.skipped`). */
  onSkipped?: (object: SkippedObject) => void;
  /** Which side this is, for messages (`source`, `destination`). */
  side: string;
  /** See {@link ExternalSortOptions.runSize}. */
  runSize?: number;
  tempDir?: string;
}

/**
 * Every object under `prefix`, in key order, each key once. A backend that lists in key order is
 * streamed as it lists, and each key checked against the one before: a listing out of order fails
 * with UNSUPPORTED before anything is decided from it. A backend that declares
 * `sortedListing: false` is listed whole first and sorted through temp files.
 */
export async function* keyOrdered(storage: MediaStorage, prefix: string, options: KeyOrderedOptions): AsyncGenerator<ObjectInfo> {
  const listing = storage.listAll(prefix, { onSkipped: options.onSkipped });
  if (storage.capabilities.sortedListing === false) {
    let last: string | undefined;
    const sorted = sortExternally(listing, {
      key: (info) => info.key,
      runSize: options.runSize,
      tempDir: options.tempDir,
      encode: encodeInfo,
      decode: decodeInfo,
    });
    for await (const info of sorted) {
      // A key briefly listed twice (Cloudinary, while a save moves it between homes) counts once.
      if (info.key === last) continue;
      last = info.key;
      yield info;
    }
    return;
  }
  let last: string | undefined;
  for await (const info of listing) {
    if (last !== undefined && compareKeys(last, info.key) >= 0) {
      throw new MediaStorageError(
        'UNSUPPORTED',
        `The ${options.side} (${storage.name}) listed ${JSON.stringify(info.key)} after ${JSON.stringify(last)}: not in key order (UTF-8 bytes), so it cannot be merged. A backend that cannot list in key order declares capabilities.sortedListing: false.`,
        { backend: storage.name, operation: 'list' },
      );
    }
    last = info.key;
    yield info;
  }
}

/** What a sync needs of a listed object, as one line of a sort run. */
function encodeInfo(info: ObjectInfo): string {
  return JSON.stringify([info.key, info.size, info.contentType, info.etag ?? null, info.lastModified ? info.lastModified.getTime() : null]);
}

function decodeInfo(line: string): ObjectInfo {
  const [key, size, contentType, etag, modified] = JSON.parse(line) as [string, number, string, string | null, number | null];
  return { key, size, contentType, ...(etag !== null ? { etag } : {}), ...(modified !== null ? { lastModified: new Date(modified) } : {}) };
}

/**
 * `source`, pulled ahead into a buffer of at most `max` items, so that a slow producer (a listing
 * waiting for its next page) works while the consumer is busy with earlier items. Memory: `max`
 * items. Ending the iteration early stops the producer.
 */
export async function* readAhead<T>(source: AsyncIterable<T>, max: number): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  const buffer: T[] = [];
  let head = 0;
  let finished = false;
  let stopped = false;
  let failure: { error: unknown } | undefined;
  let wakeConsumer: (() => void) | undefined;
  let wakeProducer: (() => void) | undefined;
  const wake = (which: 'consumer' | 'producer'): void => {
    const resolve = which === 'consumer' ? wakeConsumer : wakeProducer;
    if (which === 'consumer') wakeConsumer = undefined;
    else wakeProducer = undefined;
    resolve?.();
  };
  const producer = (async () => {
    try {
      while (!stopped) {
        if (buffer.length - head >= max) {
          await new Promise<void>((resolve) => (wakeProducer = resolve));
          continue;
        }
        const next = await iterator.next();
        if (next.done) break;
        buffer.push(next.value);
        wake('consumer');
      }
    } catch (error) {
      failure = { error };
    } finally {
      finished = true;
      wake('consumer');
    }
  })();
  try {
    for (;;) {
      if (head < buffer.length) {
        const item = buffer[head]!;
        buffer[head++] = undefined as T;
        // Compact now and then instead of shifting per item.
        if (head >= 1024 && head * 2 >= buffer.length) {
          buffer.splice(0, head);
          head = 0;
        }
        wake('producer');
        yield item;
        continue;
      }
      if (failure) throw failure.error;
      if (finished) return;
      await new Promise<void>((resolve) => (wakeConsumer = resolve));
    }
  } finally {
    stopped = true;
    wake('producer');
    await producer;
    await iterator.return?.();
  }
}
