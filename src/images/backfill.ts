import { isMediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';
import { forEachConcurrent } from '../core/pool.js';
import type { ImageStorage } from './layer.js';
import { VARIANTS_PREFIX } from './variants.js';

/** Options of {@link backfillVariants}: which photos and variants, how many at once, dry run, and progress. */
export interface BackfillOptions {
  /** Only photos whose keys start with this prefix. Default: all. */
  prefix?: string;
  /** Only these variants. Default: every declared one. */
  variants?: readonly string[];
  /** Photos processed at once. Default 4. */
  concurrency?: number;
  /** Report what would be generated; write nothing. */
  dryRun?: boolean;
  /** Generate every variant again, also those that exist (after changing how images are processed). */
  force?: boolean;
  /** Called after each photo. */
  onProgress?: (progress: BackfillProgress) => void;
  /** Stops the run: no further photo is started, and `backfillVariants` rejects with the signal's reason. */
  signal?: AbortSignal;
}

/** Running counts of a {@link backfillVariants} run, passed to {@link BackfillOptions.onProgress} after each photo. */
export interface BackfillProgress {
  /** Photos looked at. */
  scanned: number;
  /** Variants written (in a dry run: that would be). */
  generated: number;
  /** Photos whose variants were all there already. */
  complete: number;
  /** Stored objects that are not images this storage accepts (left alone). */
  notImages: number;
  /** Photos whose variants could not be generated (see {@link BackfillReport.failures}). */
  failed: number;
  /** Bytes of the variants written. */
  bytes: number;
}

/** What {@link backfillVariants} did: the final counts, the keys written, and each photo left alone or failed. */
export interface BackfillReport extends BackfillProgress {
  /** Keys written (in a dry run: that would be), sorted. */
  generatedKeys: string[];
  notImageKeys: Array<{ key: string; message: string }>;
  failures: Array<{ key: string; code: MediaStorageErrorCode | 'UNKNOWN'; message: string }>;
  /** True on Cloudinary, which renders variants on delivery: there is nothing to store. */
  renderedOnDelivery: boolean;
  dryRun: boolean;
  durationMs: number;
}

/**
 * Generates the missing variants of every photo under a prefix (photos stored before
 * `withImages`). Resumable: one listing of the variants already stored decides what is missing,
 * so a run that was interrupted, or run again, only generates what is left. Objects that are not
 * images are reported and left alone; other failures are reported and do not stop the run.
 */
export async function backfillVariants(images: ImageStorage, options: BackfillOptions = {}): Promise<BackfillReport> {
  const started = Date.now();
  const prefix = options.prefix ?? '';
  const report: BackfillReport = {
    scanned: 0,
    generated: 0,
    complete: 0,
    notImages: 0,
    failed: 0,
    bytes: 0,
    generatedKeys: [],
    notImageKeys: [],
    failures: [],
    renderedOnDelivery: images.delivery === 'cloudinary',
    dryRun: !!options.dryRun,
    durationMs: 0,
  };
  if (report.renderedOnDelivery || images.variants.size === 0) {
    report.durationMs = Date.now() - started;
    return report;
  }
  const names = options.variants ?? [...images.variants.keys()];
  for (const name of names) images.variant(name);
  const existing = new Set<string>();
  if (!options.force) for await (const item of images.storage.listAll(`${VARIANTS_PREFIX}${prefix}`)) existing.add(item.key);

  await forEachConcurrent(images.listAll(prefix), options.concurrency ?? 4, async (info) => {
    if (options.signal?.aborted) throw options.signal.reason ?? new Error('aborted');
    report.scanned++;
    try {
      if (options.dryRun) {
        const missing = names
          .flatMap((name) => images.variants.get(name)!.densities.map((v) => images.variantKey(info.key, name, v.density)))
          .filter((k) => options.force || !existing.has(k));
        if (missing.length === 0) report.complete++;
        report.generated += missing.length;
        report.generatedKeys.push(...missing);
      } else {
        const { written, bytes } = await images.generateVariants(info.key, { names, force: options.force, existing });
        if (written.length === 0) report.complete++;
        report.generated += written.length;
        report.bytes += bytes;
        report.generatedKeys.push(...written);
      }
    } catch (err) {
      const code = isMediaStorageError(err) ? err.code : 'UNKNOWN';
      const message = err instanceof Error ? err.message : String(err);
      if (code === 'INVALID_INPUT' || code === 'TOO_LARGE') {
        report.notImages++;
        report.notImageKeys.push({ key: info.key, message });
      } else {
        report.failed++;
        report.failures.push({ key: info.key, code, message });
      }
    }
    options.onProgress?.({
      scanned: report.scanned,
      generated: report.generated,
      complete: report.complete,
      notImages: report.notImages,
      failed: report.failed,
      bytes: report.bytes,
    });
  });
  report.generatedKeys.sort();
  report.durationMs = Date.now() - started;
  return report;
}
