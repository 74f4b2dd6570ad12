import { createHash } from 'node:crypto';
import { tryNormalizeContentType } from '../core/content-type.js';
import { isMediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';
import { prepareCacheControl, prepareMetadata } from '../core/metadata.js';
import type { MediaStorage, ObjectInfo, SaveOptions, SkippedObject } from '../core/types.js';
import { compareKeys } from '../core/keys.js';
import { isReservedKey, VARIANTS_PREFIX } from '../images/variants.js';
import { keyOrdered, readAhead } from './ordered.js';

/** Options of {@link syncStorages}: what to sync, how objects are compared, copies in flight, dry run, deletes, retries, and progress. */
export interface SyncOptions {
  /** Only keys starting with this prefix. */
  prefix?: string;
  /**
   * Image variants stored by `withImages` (under `_variants/`) go with their photos: with a
   * prefix, `_variants/<prefix>` is synced too. They are left out when the destination makes its
   * own (Cloudinary renders them on delivery; an image storage generates them on save). Default true.
   */
  variants?: boolean;
  /** Copies (and deletes) in flight at once; default 8. */
  concurrency?: number;
  /** Report what would be copied or deleted, change nothing. */
  dryRun?: boolean;
  /** Delete objects at the destination that the source does not have. */
  delete?: boolean;
  /** Compare MD5 checksums (reading source files that have none) as well as sizes. */
  checksum?: boolean;
  /** Tries per object for UNAVAILABLE errors; default 3. */
  attempts?: number;
  /** Base delay between tries, in ms; default 200 (doubling). */
  retryDelayMs?: number;
  /** Called after each object is handled. */
  onProgress?: (progress: SyncProgress) => void;
  /**
   * Called as each object is copied (or, in a dry run, found to need copying), deleted, fails,
   * is not copied, or is copied with a warning: the whole story of a run, without the report
   * holding it (see {@link SyncReport}).
   */
  onEvent?: (event: SyncEvent) => void;
  /** How many failures, objects not copied and warnings the report keeps as examples (all are counted); default 100. */
  maxReported?: number;
  /**
   * Where a side that cannot list in key order (`capabilities.sortedListing: false`, e.g.
   * Cloudinary) is sorted, in temp files of about 10 MB per 50,000 objects; default the OS temp folder.
   */
  tempDir?: string;
  /** Stops the run: nothing new starts, copies in flight are aborted, and the report says `interrupted` (see {@link SyncReport.interrupted}). */
  signal?: AbortSignal;
}

/** Running counts of a {@link syncStorages} run, passed to {@link SyncOptions.onProgress} after each object. */
export interface SyncProgress {
  /** Source objects handled. */
  scanned: number;
  /** Objects copied (in a dry run: that would be). */
  copied: number;
  /** Objects the destination already held the same, left alone. */
  skipped: number;
  /** Copies and deletes that failed. */
  failed: number;
  /** Bytes of the objects copied (in a dry run: that would be). */
  bytes: number;
}

/** An object a sync could not copy or delete (see {@link SyncReport.failures}). */
export interface SyncFailure {
  /** The key that failed. */
  key: string;
  /** The MediaStorageError code (`UNKNOWN` for anything else). */
  code: MediaStorageErrorCode | 'UNKNOWN';
  /** The error's message. */
  message: string;
}

/** An object copied without part of what described it, and why. */
export interface SyncWarning {
  key: string;
  message: string;
}

/** One thing a sync did or found, as it happens (see {@link SyncOptions.onEvent}). */
export type SyncEvent =
  /** Copied; in a dry run, would be copied. */
  | { type: 'copied'; key: string; size: number }
  /** Deleted at the destination (`delete`); in a dry run, would be deleted. */
  | { type: 'deleted'; key: string }
  | { type: 'failed'; failure: SyncFailure }
  /** A source object no key names (see {@link SyncReport.notCopied}); folder markers are only counted. */
  | { type: 'not-copied'; object: SkippedObject }
  | { type: 'warning'; warning: SyncWarning };

/**
 * What a run did, in counts. It keeps no list of every key (a bucket of millions would need
 * gigabytes): the keys copied and deleted go to `onEvent` as they happen, and the lists below
 * keep the first `maxReported` examples while the counts cover all.
 */
export interface SyncReport extends SyncProgress {
  deleted: number;
  /** The first failed copies or deletes (all are in `failed`); the run exits 1 (they are tried again next run). */
  failures: SyncFailure[];
  /**
   * The first source objects that hold data but that no key names (`./x`, `a//b`, control
   * characters, unmapped Cloudinary assets; see `ListPage.skipped`), by name and reason; all are
   * in `notCopiedCount`. They are not failures, so a run can finish; rename them at the source to have them copied.
   */
  notCopied: SkippedObject[];
  notCopiedCount: number;
  /** Folder markers (empty `x/` objects) at the source: nothing to copy, and not failures. */
  folderMarkers: number;
  /** The first objects copied without metadata the destination's rules refuse (the bytes were copied); all are in `warningCount`. */
  warnings: SyncWarning[];
  warningCount: number;
  durationMs: number;
  dryRun: boolean;
  /**
   * The run was stopped by `signal` (Ctrl-C in the CLI): no object was started after it fired, the
   * copies in flight were aborted (nothing partial is left: saves are atomic, and S3 multipart
   * uploads are aborted), and `delete` started no delete after it (each one made before was of a key
   * the source confirmed it has not). The next run goes on from there.
   */
  interrupted: boolean;
  /** The first copies in flight when the run was interrupted, aborted: copied by the next run. */
  interruptedKeys: string[];
}

const RETRYABLE = new Set<string>(['UNAVAILABLE', 'UNKNOWN']);
const WHOLE_READ_BYTES = 1024 * 1024;

/** MD5 of an object: its etag when the backend's etags are MD5s (single-part), else read and hashed. */
async function md5Of(storage: MediaStorage, info: ObjectInfo): Promise<string> {
  if (storage.capabilities.md5Etag && info.etag && MD5.test(info.etag)) return info.etag;
  const hash = createHash('md5');
  for await (const chunk of await storage.read(info.key)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

const MD5 = /^[0-9a-f]{32}$/;

/**
 * Whether the destination holds the same object, from the two listings alone; `undefined` when
 * only the source's bytes can tell (`checksum`, and the source has no MD5 etag).
 */
function quickSame(from: MediaStorage, to: MediaStorage, source: ObjectInfo, target: ObjectInfo | undefined, checksum: boolean): boolean | undefined {
  if (!target || target.size !== source.size) return false;
  const bothMd5 = from.capabilities.md5Etag && to.capabilities.md5Etag && !!source.etag && !!target.etag;
  if (bothMd5 && MD5.test(source.etag!) && MD5.test(target.etag!)) return source.etag === target.etag;
  if (!checksum) return true;
  if (!target.etag || !MD5.test(target.etag) || !to.capabilities.md5Etag) return true; // nothing comparable on the destination
  return undefined;
}

async function sameContent(from: MediaStorage, to: MediaStorage, source: ObjectInfo, target: ObjectInfo | undefined, checksum: boolean): Promise<boolean> {
  return quickSame(from, to, source, target, checksum) ?? (await md5Of(from, source)) === target!.etag;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Copies every object that is missing or different (size; MD5 where both sides have it, or with
 * `checksum`) from one storage to another, streaming each object under exactly its key, with its
 * stored content type, Cache-Control and metadata when the source keeps them. Resumable: objects
 * already at the destination are skipped, and saves are atomic, so an interrupted run leaves no
 * partial object and the next run copies only what is left. Source objects no key names are
 * reported in `notCopied` (folder markers only counted), never retried as failures.
 *
 * Memory does not grow with the buckets: both listings are read side by side in key order (a
 * merge join), each object decided as the two listings pass it, and `delete` removes a
 * destination object once the source listing has gone past its key and the source confirms
 * (`exists`) it has none under that key. A side that cannot
 * list in key order is sorted through temp files first (see `tempDir`).
 */
export async function syncStorages(from: MediaStorage, to: MediaStorage, options: SyncOptions = {}): Promise<SyncReport> {
  const started = Date.now();
  const prefix = options.prefix ?? '';
  const attempts = Math.max(1, options.attempts ?? 3);
  const baseDelay = options.retryDelayMs ?? 200;
  const maxReported = Math.max(0, options.maxReported ?? 100);
  const checksum = !!options.checksum;
  const report: SyncReport = {
    scanned: 0,
    copied: 0,
    skipped: 0,
    failed: 0,
    bytes: 0,
    deleted: 0,
    failures: [],
    notCopied: [],
    notCopiedCount: 0,
    folderMarkers: 0,
    warnings: [],
    warningCount: 0,
    durationMs: 0,
    dryRun: !!options.dryRun,
    interrupted: false,
    interruptedKeys: [],
  };
  const emit = options.onEvent;
  const noteSkipped = (object: SkippedObject): void => {
    if (object.reason === 'folder-marker') {
      report.folderMarkers++;
      return;
    }
    if (report.notCopiedCount++ < maxReported) report.notCopied.push(object);
    emit?.({ type: 'not-copied', object });
  };
  const warn = (warning: SyncWarning): void => {
    if (report.warningCount++ < maxReported) report.warnings.push(warning);
    emit?.({ type: 'warning', warning });
  };
  const fail = (key: string, err: unknown): void => {
    const failure: SyncFailure = { key, code: isMediaStorageError(err) ? err.code : 'UNKNOWN', message: err instanceof Error ? err.message : String(err) };
    if (report.failed++ < maxReported) report.failures.push(failure);
    emit?.({ type: 'failed', failure });
  };
  const progress = (): void =>
    options.onProgress?.({ scanned: report.scanned, copied: report.copied, skipped: report.skipped, failed: report.failed, bytes: report.bytes });

  // Variants travel with their photos, unless the destination makes its own.
  const destinationMakesVariants = to.name === 'cloudinary' || typeof (to as { ensureVariant?: unknown }).ensureVariant === 'function';
  const withVariants = options.variants !== false && !destinationMakesVariants;
  const scopes = withVariants && prefix !== '' && !prefix.startsWith(VARIANTS_PREFIX) ? [prefix, `${VARIANTS_PREFIX}${prefix}`] : [prefix];
  const wanted = (key: string): boolean => withVariants || !isReservedKey(key);
  /** One side's listing of one scope, in key order, without the keys this run leaves alone. */
  async function* listed(storage: MediaStorage, scope: string, side: 'source' | 'destination'): AsyncGenerator<ObjectInfo> {
    const ordered = keyOrdered(storage, scope, { side, tempDir: options.tempDir, ...(side === 'source' ? { onSkipped: noteSkipped } : {}) });
    for await (const info of ordered) if (wanted(info.key)) yield info;
  }

  const copyOne = async (info: ObjectInfo): Promise<void> => {
    let described: Awaited<ReturnType<typeof describe>> | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        described ??= await describe(info);
        // Small files are read whole (memory stays under concurrency x 1 MiB): a known length lets
        // the destination send one request without buffering; larger files stream.
        const body =
          info.size <= WHOLE_READ_BYTES ? await from.readBuffer(info.key, { signal: options.signal }) : await from.read(info.key, { signal: options.signal });
        await to.save(info.key, body, { ...described, allowEmpty: true, signal: options.signal });
        return;
      } catch (err) {
        const code = isMediaStorageError(err) ? err.code : 'UNKNOWN';
        if (attempt >= attempts || !RETRYABLE.has(code) || options.signal?.aborted) throw err;
        await sleep(baseDelay * 2 ** (attempt - 1) * (0.5 + Math.random()));
      }
    }
  };

  /**
   * What to save the copy with. A listing has neither the stored content type nor metadata: a
   * source that keeps them is asked (stat); otherwise the destination decides the type from the
   * bytes, as the source did. Metadata no backend could give back (a foreign value with a line
   * break) is left behind with a warning, so the object is still copied.
   */
  const describe = async (info: ObjectInfo): Promise<Pick<SaveOptions, 'contentType' | 'cacheControl' | 'metadata'>> => {
    if (!from.capabilities.metadata) return {};
    const full = await from.stat(info.key);
    const metadata: Record<string, string> = {};
    for (const [name, value] of Object.entries(full.metadata ?? {})) {
      try {
        Object.assign(metadata, prepareMetadata({ [name]: value }));
      } catch (err) {
        warn({ key: info.key, message: `copied without metadata ${JSON.stringify(name)}: ${(err as Error).message}` });
      }
    }
    let cacheControl = full.cacheControl;
    try {
      prepareCacheControl(cacheControl);
    } catch (err) {
      warn({ key: info.key, message: `copied without its Cache-Control: ${(err as Error).message}` });
      cacheControl = undefined;
    }
    // A stored type the content-type rule would refuse (other software wrote it) is left to the destination to sniff.
    const contentType = tryNormalizeContentType(full.contentType);
    return { ...(contentType ? { contentType } : {}), ...(cacheControl ? { cacheControl } : {}), ...(Object.keys(metadata).length > 0 ? { metadata } : {}) };
  };

  /** Copies the source object unless the destination already holds the same. */
  const syncOne = async (source: ObjectInfo, target: ObjectInfo | undefined): Promise<void> => {
    // Its slot came free after the signal fired: nothing new starts (the next run takes it).
    if (options.signal?.aborted) return;
    try {
      if (await sameContent(from, to, source, target, checksum)) {
        report.skipped++;
      } else {
        if (!options.dryRun) await copyOne(source);
        report.copied++;
        report.bytes += source.size;
        emit?.({ type: 'copied', key: source.key, size: source.size });
      }
    } catch (err) {
      // Stopped by the signal: aborted, not failed (the next run copies it).
      if (options.signal?.aborted) {
        if (report.interruptedKeys.length < maxReported) report.interruptedKeys.push(source.key);
      } else fail(source.key, err);
    }
    report.scanned++;
    progress();
  };

  /** A key the source's own rules refuse (a name reserved there) is one it cannot hold. */
  const existsAtSource = (key: string): Promise<boolean> =>
    from.exists(key).catch((err: unknown) => {
      if (isMediaStorageError(err) && err.code === 'INVALID_KEY') return false;
      throw err;
    });

  const deleteOne = async (key: string): Promise<void> => {
    if (options.signal?.aborted) return;
    try {
      // The source listing went past the key without it; the source confirms before anything is
      // deleted, so a listing that misorders (or an object uploaded meanwhile) never costs a copy.
      if (await existsAtSource(key)) return;
      if (!options.dryRun) await to.delete(key);
      report.deleted++;
      emit?.({ type: 'deleted', key });
    } catch (err) {
      fail(key, err);
    }
  };

  const tasks = new TaskSlots(options.concurrency ?? 8);
  const aborted = (): boolean => !!options.signal?.aborted;
  // Scopes are joined one after the other: `_variants/p/` sorts before `p/`, so their listings
  // are key-ordered each, not one after the other.
  for (const scope of scopes) {
    if (aborted()) break;
    const sources = readAhead(listed(from, scope, 'source'), READ_AHEAD);
    const targets = readAhead(listed(to, scope, 'destination'), READ_AHEAD);
    try {
      let source = await sources.next();
      let target = await targets.next();
      while (!(source.done && target.done) && !aborted()) {
        const order = source.done ? 1 : target.done ? -1 : compareKeys(source.value.key, target.value.key);
        if (order <= 0) {
          const s = source.value as ObjectInfo;
          const t = order === 0 ? (target.value as ObjectInfo) : undefined;
          // Most objects of a second run are decided from the two listings alone: no task, no await.
          const same = quickSame(from, to, s, t, checksum);
          if (same === true) {
            report.skipped++;
            report.scanned++;
            progress();
          } else {
            await tasks.start(() => syncOne(s, t));
          }
          source = await sources.next();
          if (order === 0) target = await targets.next();
        } else {
          const t = target.value as ObjectInfo;
          if (options.delete) await tasks.start(() => deleteOne(t.key));
          target = await targets.next();
        }
      }
    } finally {
      await tasks.drain();
      await Promise.all([sources.return(undefined), targets.return(undefined)]);
    }
  }
  report.interrupted = aborted();
  report.interruptedKeys.sort(compareKeys);
  report.durationMs = Date.now() - started;
  return report;
}

/** Listed objects buffered ahead per side, so both listings and the copies overlap. */
const READ_AHEAD = 2000;

/**
 * At most `limit` tasks at once: `start` resolves when the task has started (waiting for a free
 * slot first), `drain` when all have ended. Tasks report their own failures.
 */
class TaskSlots {
  private running = 0;
  private readonly idle: Array<() => void> = [];
  private readonly limit: number;

  constructor(limit: number) {
    this.limit = Math.max(1, limit);
  }

  async start(task: () => Promise<void>): Promise<void> {
    while (this.running >= this.limit) await new Promise<void>((resolve) => this.idle.push(resolve));
    this.running++;
    void task().finally(() => {
      this.running--;
      this.idle.shift()?.();
    });
  }

  async drain(): Promise<void> {
    while (this.running > 0) await new Promise<void>((resolve) => this.idle.push(resolve));
  }
}
