/**
 * Uploads to B2: b2_upload_file with a pooled upload URL, the spool-while-streaming first try for
 * bodies of known length, and the large-file protocol (start, parts two at a time, finish),
 * cancelled on failure or abort. A failed upload is retried on a fresh upload URL, as Backblaze asks.
 */
import { PassThrough, Transform, pipeline } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { PreparedBody } from '../core/body.js';
import { MediaStorageError, abortedError } from '../core/errors.js';
import { forEachConcurrent } from '../core/pool.js';
import type { B2Session } from './auth.js';
import { B2ApiError, isAbort, isTransient, needsFreshUploadUrl, toB2ApiError } from './errors.js';
import { MAX_INFO_ENTRIES, fileInfoHeaderBytes } from './file-info.js';
import type { B2FileJson, B2UploadTarget, SdkResponse } from './sdk.js';
import { spoolBody, type SpooledBody } from './spool.js';

const MAX_PARTS = 10_000;
const PART_CONCURRENCY = 2;
const CANCEL_ATTEMPTS = 3;
/** The longest Retry-After an upload waits out before its next try; a longer one fails at once, with `retryAfter` set. */
const MAX_RETRY_AFTER_MS = 30_000;

/**
 * The wait before the next try of an upload: B2's Retry-After when it sent one, else exponential
 * backoff with full jitter. Rethrows `err` when Retry-After asks for longer than we wait (the
 * caller learns when to come back from its `retryAfter`); rejects with ABORTED as soon as `signal` fires.
 */
async function waitToRetry(attempt: number, err: unknown, signal: AbortSignal | undefined, name: string): Promise<void> {
  const retryAfter = err instanceof B2ApiError ? err.retryAfter : undefined;
  const wait = retryAfter ? Math.max(0, retryAfter.getTime() - Date.now()) : Math.random() * Math.min(8000, 100 * 2 ** (attempt - 1));
  if (wait > MAX_RETRY_AFTER_MS) throw err;
  try {
    await sleep(wait, undefined, { signal });
  } catch {
    throw abortedError('save', name, undefined, signal?.reason);
  }
}

/**
 * Upload URLs (and their tokens) for b2_upload_file. B2 lets one upload at a time use a URL, so
 * each upload takes one out; it goes back after a success and is dropped after any failure.
 */
class UploadUrlPool {
  private readonly idle: B2UploadTarget[] = [];
  constructor(private readonly fetchOne: () => Promise<B2UploadTarget>) {}
  async acquire(): Promise<B2UploadTarget> {
    return this.idle.pop() ?? this.fetchOne();
  }
  release(target: B2UploadTarget): void {
    this.idle.push(target);
  }
}

/** How a {@link B2Uploader} uploads. */
export interface B2UploaderOptions {
  /** Tries per upload (and per part), each with a fresh upload URL. */
  maxAttempts: number;
  /** Stream bodies up to this size are kept in memory; larger ones go to a temp file. */
  spoolThreshold: number;
}

/** The uploads of one B2Storage, sharing its session and its pool of upload URLs. */
export class B2Uploader {
  private readonly uploadUrls: UploadUrlPool;

  constructor(
    private readonly session: B2Session,
    private readonly options: B2UploaderOptions,
    /** The current version of a file name (a HEAD), to learn whether a finish whose answer was lost did finish. */
    private readonly currentVersion: (name: string) => Promise<B2FileJson | undefined>,
  ) {
    this.uploadUrls = new UploadUrlPool(() =>
      this.session.call('b2_get_upload_url', (sdk) => sdk.getUploadUrl({ bucketId: this.session.bucketId!, axiosOverride: this.session.settings() })),
    );
  }

  /**
   * Sends with a target from `acquire`, up to maxAttempts times: after a failure that
   * {@link needsFreshUploadUrl} the target (upload URL and token) is dropped and the next try gets
   * a fresh one, as Backblaze asks ("try five different upload URLs before reporting an error").
   * Getting that URL is part of the step: a b2_get_upload_url (or part URL) that fails for a
   * connection, 408 or 5xx uses up a try too. Any other failure, or the last, is thrown (a
   * temporary one as UNAVAILABLE, for the retry layer).
   */
  private async sendWithRetries<T>(
    api: string,
    acquire: () => Promise<B2UploadTarget>,
    release: ((t: B2UploadTarget) => void) | undefined,
    send: (t: B2UploadTarget) => Promise<SdkResponse<T>>,
    signal: AbortSignal | undefined,
    key: string,
    attemptsUsed = 0,
  ): Promise<T> {
    for (let attempt = attemptsUsed + 1; ; attempt++) {
      if (signal?.aborted) throw abortedError('save', key, undefined, signal.reason);
      let target: B2UploadTarget | undefined;
      let err: unknown;
      try {
        target = await acquire();
        const res = await send(target);
        release?.(target);
        return res.data;
      } catch (raw) {
        if (isAbort(raw, signal)) throw abortedError('save', key, undefined, signal?.reason ?? raw);
        err = await toB2ApiError(api, raw);
      }
      // A 401 on the URL call itself outlived the session's token renewal: a permission, not a stale URL.
      const retry = needsFreshUploadUrl(err) && (target !== undefined || (err as B2ApiError).status !== 401);
      if (!retry || attempt >= this.options.maxAttempts) throw err;
      await waitToRetry(attempt, err, signal, key);
    }
  }

  /**
   * For a body whose length is known up front but which is not in memory (a Blob or File): the
   * first try streams it straight to B2 with its SHA-1 computed on the way and sent after the
   * bytes (`hex_digits_at_end`), while the same bytes are spooled; a retry resends the spool.
   */
  async uploadWhileSpooling(
    name: string,
    body: PreparedBody,
    size: number,
    partSize: number,
    info: Record<string, string>,
    signal: AbortSignal | undefined,
  ): Promise<B2FileJson> {
    const target = await this.uploadUrls.acquire();
    const wire = new PassThrough({ highWaterMark: 256 * 1024 });
    wire.on('error', () => undefined);
    let wireDone = false;
    const first = this.session
      .sdk!.uploadFile({
        uploadUrl: target.uploadUrl,
        uploadAuthToken: target.authorizationToken,
        fileName: name,
        data: wire,
        contentLength: size + 40,
        hash: 'hex_digits_at_end',
        mime: body.contentType,
        info,
        axiosOverride: this.session.settings({ signal }),
      })
      .then(
        (res) => ({ res }),
        (error: unknown) => {
          wireDone = true;
          wire.destroy();
          return { error };
        },
      );
    let sent = 0;
    // Passes every chunk to the spool, and to the wire while the first try is alive (with backpressure).
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, done) {
        sent += chunk.length;
        if (wireDone || wire.destroyed) return done(null, chunk);
        if (sent > size) {
          wireDone = true;
          wire.destroy(new Error('the body is longer than its declared size'));
          return done(null, chunk);
        }
        if (wire.write(chunk)) return done(null, chunk);
        const resume = (): void => {
          wire.off('drain', resume);
          wire.off('close', resume);
          done(null, chunk);
        };
        wire.on('drain', resume);
        wire.on('close', resume);
      },
    });
    let spooled: SpooledBody;
    try {
      spooled = await spoolBody(
        pipeline(body.stream(), tap, () => undefined),
        { spoolThreshold: this.options.spoolThreshold, partSize },
      );
    } catch (err) {
      // The body failed (limit, abort, broken source): cut the upload short so B2 never commits it.
      wireDone = true;
      wire.destroy(err as Error);
      await first;
      throw err;
    }
    try {
      if (spooled.size === size && !wireDone) wire.end(spooled.sha1);
      else wire.destroy(new Error('the body did not match its declared size'));
      const outcome = await first;
      if ('res' in outcome) {
        this.uploadUrls.release(target);
        return outcome.res.data;
      }
      if (isAbort(outcome.error, signal)) throw abortedError('save', name, undefined, signal?.reason ?? outcome.error);
      const err = await toB2ApiError('b2_upload_file', outcome.error);
      const retry = spooled.size !== size || needsFreshUploadUrl(err);
      if (!retry || this.options.maxAttempts < 2) throw err;
      await waitToRetry(1, err, signal, name);
      return await this.uploadSimple(name, spooled, body.contentType, info, signal, 1);
    } finally {
      await spooled.dispose();
    }
  }

  uploadSimple(
    name: string,
    body: SpooledBody,
    contentType: string,
    info: Record<string, string>,
    signal: AbortSignal | undefined,
    attemptsUsed = 0,
  ): Promise<B2FileJson> {
    return this.sendWithRetries(
      'b2_upload_file',
      () => this.uploadUrls.acquire(),
      (t) => this.uploadUrls.release(t),
      (target) =>
        this.session.sdk!.uploadFile({
          uploadUrl: target.uploadUrl,
          uploadAuthToken: target.authorizationToken,
          fileName: name,
          data: body.slice(0, body.size),
          contentLength: body.size,
          hash: body.sha1,
          mime: contentType,
          info,
          axiosOverride: this.session.settings({ signal }),
        }),
      signal,
      name,
      attemptsUsed,
    );
  }

  /**
   * b2_start_large_file. B2 may have started the file before a temporary failure (an answer lost
   * on the way back): such a file is found among the unfinished large files of the name (same file
   * info, which includes the body's SHA-1 when there is room) and cancelled, so none is left
   * behind. Tried `attempts` times: once when the retry layer can repeat the whole save (a body it
   * can send again), up to maxAttempts when only this uploader holds the bytes (a stream, spooled
   * here whole, which a failed start would otherwise throw away).
   */
  private async startLargeFile(
    name: string,
    contentType: string,
    fileInfo: Record<string, string>,
    attempts: number,
    signal: AbortSignal | undefined,
  ): Promise<string> {
    for (let attempt = 1; ; attempt++) {
      try {
        const started = await this.session.call('b2_start_large_file', (sdk) =>
          sdk.startLargeFile({
            bucketId: this.session.bucketId!,
            fileName: name,
            contentType,
            axiosOverride: { ...this.session.settings(), data: { fileInfo } },
          }),
        );
        return started.fileId;
      } catch (err) {
        if (!isTransient(err)) throw err;
        await this.cancelUnfinished(name, fileInfo).catch(() => {
          throw err;
        });
        if (attempt >= attempts) throw err;
        await waitToRetry(attempt, err, signal, name);
      }
    }
  }

  /**
   * b2_cancel_large_file, tried up to three times: it cleans up after a failure the caller already
   * has, so no layer above sees it to retry it, and a large file left unfinished is billed and
   * shows in listings of versions. It runs even after an abort (no signal).
   */
  private async cancelLargeFile(fileId: string): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.session.call('b2_cancel_large_file', (sdk) => sdk.cancelLargeFile({ fileId, axiosOverride: this.session.settings() }));
        return;
      } catch (err) {
        if (!isTransient(err) || attempt >= CANCEL_ATTEMPTS) throw err;
        await waitToRetry(attempt, err, undefined, fileId);
      }
    }
  }

  /** Cancels the unfinished large files of exactly this name and file info. */
  private async cancelUnfinished(name: string, fileInfo: Record<string, string>): Promise<void> {
    const same = (info: Record<string, string> | undefined): boolean => {
      const a = Object.entries(info ?? {}).sort();
      const b = Object.entries(fileInfo).sort();
      return a.length === b.length && a.every(([k, v], i) => k === b[i]![0] && v === b[i]![1]);
    };
    const page = await this.session.callJson<{ files: B2FileJson[] }>('b2_list_unfinished_large_files', {
      bucketId: this.session.bucketId,
      namePrefix: name,
      maxFileCount: 100,
    });
    for (const file of page.files.filter((f) => f.fileName === name && same(f.fileInfo))) {
      await this.cancelLargeFile(file.fileId);
    }
  }

  /**
   * b2_start_large_file, the parts (each with its SHA-1, two at a time, in the core pool),
   * b2_finish_large_file; cancelled on any failure. `replayable`: the caller's body can be sent
   * again, so the retry layer repeats a save whose start failed (see startLargeFile).
   */
  async uploadLarge(
    name: string,
    body: SpooledBody,
    contentType: string,
    info: Record<string, string>,
    signal: AbortSignal | undefined,
    replayable: boolean,
  ): Promise<B2FileJson> {
    const partCount = body.partSha1s.length;
    if (partCount > MAX_PARTS)
      throw new MediaStorageError('TOO_LARGE', `The body needs ${partCount} parts of ${body.partSize} bytes; B2 allows ${MAX_PARTS}: raise partSize`);
    // large_file_sha1 (Backblaze's recommendation, and our etag) when the 10 entries and the header limit leave room.
    const withSha1 = { ...info, large_file_sha1: body.sha1 };
    const bytes = fileInfoHeaderBytes(name, withSha1, contentType);
    const fileInfo = Object.keys(info).length < MAX_INFO_ENTRIES && bytes <= (await this.session.headerLimitFor(bytes)) ? withSha1 : info;
    const fileId = await this.startLargeFile(name, contentType, fileInfo, replayable ? 1 : this.options.maxAttempts, signal);
    // One failed part stops the others at once, so the cancel below is not raced by them.
    const stop = new AbortController();
    const partSignal = signal ? AbortSignal.any([signal, stop.signal]) : stop.signal;
    let firstError: unknown;
    let finishing = false;
    try {
      // Part URLs, like upload URLs, serve one part at a time: a worker takes one, gives it back after a success.
      const partUrls = new UploadUrlPool(() =>
        this.session.call('b2_get_upload_part_url', (sdk) => sdk.getUploadPartUrl({ fileId, axiosOverride: this.session.settings() })),
      );
      const sendPart = async (index: number): Promise<void> => {
        const start = index * body.partSize;
        const end = Math.min(body.size, start + body.partSize);
        await this.sendWithRetries(
          'b2_upload_part',
          () => partUrls.acquire(),
          (t) => partUrls.release(t),
          (target) =>
            this.session.sdk!.uploadPart({
              uploadUrl: target.uploadUrl,
              uploadAuthToken: target.authorizationToken,
              partNumber: index + 1,
              data: body.slice(start, end),
              contentLength: end - start,
              hash: body.partSha1s[index]!,
              axiosOverride: this.session.settings({ signal: partSignal }),
            }),
          partSignal,
          name,
        ).catch((err: unknown) => {
          firstError ??= err;
          stop.abort(err);
          throw err;
        });
      };
      // The core pool awaits the parts in flight before it throws: the cancel below never races one.
      try {
        await forEachConcurrent(body.partSha1s.keys(), PART_CONCURRENCY, sendPart, partSignal);
      } catch (err) {
        throw signal?.aborted ? abortedError('save', name, undefined, signal.reason) : (firstError ?? err);
      }
      if (signal?.aborted) throw abortedError('save', name, undefined, signal.reason);
      finishing = true;
      return await this.session.call('b2_finish_large_file', (sdk) =>
        sdk.finishLargeFile({ fileId, partSha1Array: [...body.partSha1s], axiosOverride: this.session.settings() }),
      );
    } catch (err) {
      // B2 may have finished the file before its answer was lost: then the save did succeed.
      if (finishing && isTransient(err)) {
        const stored = await this.currentVersion(name).catch(() => undefined);
        if (stored?.fileId === fileId) return stored;
      }
      // Leave no unfinished large file behind (they are billed and show in listings of versions).
      await this.cancelLargeFile(fileId).catch(() => undefined);
      throw err;
    }
  }
}
