import { createHash } from 'node:crypto';
import { tryNormalizeContentType } from '../core/content-type.js';
import { isMediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';
import { prepareCacheControl, prepareMetadata } from '../core/metadata.js';
import type { MediaStorage, ObjectInfo, SaveOptions, SkippedObject } from '../core/types.js';
import { isReservedKey, VARIANTS_PREFIX } from '../images/variants.js';
import { forEachConcurrent } from './pool.js';

export interface SyncOptions {
  /** Only keys starting with this prefix. */
  prefix?: string;
  /**
   * Image variants stored by `withImages` (under `_variants/`) go with their photos: with a
   * prefix, `_variants/<prefix>` is synced too. They are left out when the destination makes its
   * own (Cloudinary renders them on delivery; an image storage generates them on save). Default true.
   */
  variants?: boolean;
  /** Copies in flight at once; default 8. */
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
  signal?: AbortSignal;
}

export interface SyncProgress {
  scanned: number;
  copied: number;
  skipped: number;
  failed: number;
  bytes: number;
}

export interface SyncFailure {
  key: string;
  code: MediaStorageErrorCode | 'UNKNOWN';
  message: string;
}

/** An object copied without part of what described it, and why. */
export interface SyncWarning {
  key: string;
  message: string;
}

export interface SyncReport extends SyncProgress {
  deleted: number;
  /** Keys copied (or, in a dry run, that would be). */
  copiedKeys: string[];
  deletedKeys: string[];
  /** Copies or deletes that failed; the run exits 1 (they are tried again next run). */
  failures: SyncFailure[];
  /**
   * Source objects that hold data but that no key names (`./x`, `a//b`, control characters,
   * unmapped Cloudinary assets; see `ListPage.skipped`): not copied, reported by name and reason.
   * They are not failures, so a run can finish; rename them at the source to have them copied.
   */
  notCopied: SkippedObject[];
  /** Folder markers (empty `x/` objects) at the source: nothing to copy, and not failures. */
  folderMarkers: number;
  /** Objects copied without metadata the destination's rules refuse (the bytes were copied). */
  warnings: SyncWarning[];
  durationMs: number;
  dryRun: boolean;
  /**
   * The run was stopped by `signal` (Ctrl-C in the CLI): no object was started after it fired, the
   * copies in flight were aborted (nothing partial is left: saves are atomic, and S3 multipart
   * uploads are aborted), and `--delete` deleted nothing. The next run goes on from there.
   */
  interrupted: boolean;
  /** Copies in flight when the run was interrupted, aborted: copied by the next run. */
  interruptedKeys: string[];
}

const RETRYABLE = new Set<string>(['UNAVAILABLE', 'UNKNOWN']);
const WHOLE_READ_BYTES = 1024 * 1024;

/** MD5 of an object: its etag when the backend's etags are MD5s (single-part), else read and hashed. */
async function md5Of(storage: MediaStorage, info: ObjectInfo): Promise<string> {
  if (storage.capabilities.md5Etag && info.etag && /^[0-9a-f]{32}$/.test(info.etag)) return info.etag;
  const hash = createHash('md5');
  for await (const chunk of await storage.read(info.key)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function sameContent(from: MediaStorage, to: MediaStorage, source: ObjectInfo, target: ObjectInfo | undefined, checksum: boolean): Promise<boolean> {
  if (!target || target.size !== source.size) return false;
  const bothMd5 = from.capabilities.md5Etag && to.capabilities.md5Etag && !!source.etag && !!target.etag;
  if (bothMd5 && /^[0-9a-f]{32}$/.test(source.etag!) && /^[0-9a-f]{32}$/.test(target.etag!)) return source.etag === target.etag;
  if (!checksum) return true;
  if (!target.etag || !/^[0-9a-f]{32}$/.test(target.etag) || !to.capabilities.md5Etag) return true; // nothing comparable on the destination
  return (await md5Of(from, source)) === target.etag;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Copies every object that is missing or different (size; MD5 where both sides have it, or with
 * `checksum`) from one storage to another, streaming each object under exactly its key, with its
 * stored content type, Cache-Control and metadata when the source keeps them. Resumable: objects
 * already at the destination are skipped, and saves are atomic, so an interrupted run leaves no
 * partial object and the next run copies only what is left. Source objects no key names are
 * reported in `notCopied` (folder markers only counted), never retried as failures.
 */
export async function syncStorages(from: MediaStorage, to: MediaStorage, options: SyncOptions = {}): Promise<SyncReport> {
  const started = Date.now();
  const prefix = options.prefix ?? '';
  const attempts = Math.max(1, options.attempts ?? 3);
  const baseDelay = options.retryDelayMs ?? 200;
  const report: SyncReport = { scanned: 0, copied: 0, skipped: 0, failed: 0, bytes: 0, deleted: 0, copiedKeys: [], deletedKeys: [], failures: [], notCopied: [], folderMarkers: 0, warnings: [], durationMs: 0, dryRun: !!options.dryRun, interrupted: false, interruptedKeys: [] };
  const signal = options.signal;
  const noteSkipped = (object: SkippedObject): void => {
    if (object.reason === 'folder-marker') report.folderMarkers++;
    else report.notCopied.push(object);
  };

  // Variants travel with their photos, unless the destination makes its own.
  const destinationMakesVariants = to.name === 'cloudinary' || typeof (to as { ensureVariant?: unknown }).ensureVariant === 'function';
  const withVariants = options.variants !== false && !destinationMakesVariants;
  const scopes = withVariants && prefix !== '' && !prefix.startsWith(VARIANTS_PREFIX) ? [prefix, `${VARIANTS_PREFIX}${prefix}`] : [prefix];
  const wanted = (key: string): boolean => withVariants || !isReservedKey(key);
  async function* listScopes(storage: MediaStorage, listOptions?: Parameters<MediaStorage['listAll']>[1]): AsyncGenerator<ObjectInfo> {
    for (const scope of scopes) for await (const info of storage.listAll(scope, listOptions)) if (wanted(info.key)) yield info;
  }

  // One listing of the destination instead of a request per object.
  const existing = new Map<string, ObjectInfo>();
  for await (const info of listScopes(to)) {
    if (signal?.aborted) break;
    existing.set(info.key, info);
  }
  const seen = options.delete ? new Set<string>() : undefined;

  const copyOne = async (info: ObjectInfo): Promise<void> => {
    let described: Awaited<ReturnType<typeof describe>> | undefined;
    for (let attempt = 1; ; attempt++) {
      try {
        described ??= await describe(info);
        // Small files are read whole (memory stays under concurrency x 1 MiB): a known length lets
        // the destination send one request without buffering; larger files stream.
        const body = info.size <= WHOLE_READ_BYTES ? await from.readBuffer(info.key, { signal: options.signal }) : await from.read(info.key, { signal: options.signal });
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
        report.warnings.push({ key: info.key, message: `copied without metadata ${JSON.stringify(name)}: ${(err as Error).message}` });
      }
    }
    let cacheControl = full.cacheControl;
    try {
      prepareCacheControl(cacheControl);
    } catch (err) {
      report.warnings.push({ key: info.key, message: `copied without its Cache-Control: ${(err as Error).message}` });
      cacheControl = undefined;
    }
    // A stored type the content-type rule would refuse (other software wrote it) is left to the destination to sniff.
    const contentType = tryNormalizeContentType(full.contentType);
    return { ...(contentType ? { contentType } : {}), ...(cacheControl ? { cacheControl } : {}), ...(Object.keys(metadata).length > 0 ? { metadata } : {}) };
  };

  await forEachConcurrent(listScopes(from, { onSkipped: noteSkipped }), options.concurrency ?? 8, async (info) => {
    report.scanned++;
    seen?.add(info.key);
    try {
      if (await sameContent(from, to, info, existing.get(info.key), !!options.checksum)) {
        report.skipped++;
      } else {
        if (!options.dryRun) await copyOne(info);
        report.copied++;
        report.bytes += info.size;
        report.copiedKeys.push(info.key);
      }
    } catch (err) {
      if (signal?.aborted) {
        report.interruptedKeys.push(info.key);
      } else {
        report.failed++;
        report.failures.push({ key: info.key, code: isMediaStorageError(err) ? err.code : 'UNKNOWN', message: err instanceof Error ? err.message : String(err) });
      }
    }
    options.onProgress?.({ scanned: report.scanned, copied: report.copied, skipped: report.skipped, failed: report.failed, bytes: report.bytes });
  }, signal);
  report.interrupted = !!signal?.aborted;

  // An interrupted scan has not seen every source object: deleting what it did not see would
  // delete objects the source has.
  if (seen && !report.interrupted) {
    const extra = [...existing.keys()].filter((key) => !seen.has(key));
    await forEachConcurrent(extra, options.concurrency ?? 8, async (key) => {
      try {
        if (!options.dryRun) await to.delete(key);
        report.deleted++;
        report.deletedKeys.push(key);
      } catch (err) {
        report.failed++;
        report.failures.push({ key, code: isMediaStorageError(err) ? err.code : 'UNKNOWN', message: err instanceof Error ? err.message : String(err) });
      }
    }, signal);
    report.interrupted = !!signal?.aborted;
  }
  report.copiedKeys.sort();
  report.interruptedKeys.sort();
  report.deletedKeys.sort();
  report.durationMs = Date.now() - started;
  return report;
}
