import { createHash } from 'node:crypto';
import type { CompletedPart, PutObjectCommandInput } from '@aws-sdk/client-s3';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  ListMultipartUploadsCommand,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from './sdk.js';
import type { PreparedBody } from '../core/body.js';
import { abortedError, isMediaStorageError, MediaStorageError } from '../core/errors.js';
import type { SaveOptions } from '../core/types.js';
import { PartPool } from '../core/part-pool.js';
import { mapS3Error } from './errors.js';

/** What {@link uploadBody} needs to know besides the bytes. */
export interface UploadPlan {
  client: S3Client;
  /** Retry a stream's requests here: true for a client S3Storage built (one that makes one attempt per call). */
  retryRequests: boolean;
  /** PutObject parameters without Body; multipart uploads send the ones CreateMultipartUpload takes. */
  params: Omit<PutObjectCommandInput, 'Body'>;
  /** Send a Content-MD5 with every put and part, and compute the ETag to expect. */
  contentMd5: boolean;
  /** The body's length when known before reading (buffers, strings, Blobs). */
  knownSize: number | undefined;
  /** Bodies of known length up to this many bytes go in one PutObject. */
  multipartThreshold: number;
  partSize: number;
  queueSize: number;
  signal?: AbortSignal;
  onProgress?: SaveOptions['onProgress'];
}

/** The outcome of an upload: what the server answered and what we sent. */
export interface UploadOutcome {
  size: number;
  /** ETag from the server's answer, quotes removed; may be empty (Ceph RGW after CompleteMultipartUpload). */
  etag: string | undefined;
  /** Number of parts, or 0 for a single PutObject. */
  parts: number;
  /** With contentMd5, the ETag S3 computes for what we sent: MD5 of the bytes, or MD5 of the part MD5s with "-N"; else empty. */
  expectedEtag: string;
}

function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

export function unquote(etag: string | undefined): string | undefined {
  if (etag === undefined) return undefined;
  const strong = etag.startsWith('W/') ? etag.slice(2) : etag;
  return strong.includes('"') ? strong.replaceAll('"', '') : strong;
}

/**
 * Sends the upload's requests: the caller's AbortSignal goes to the requests that carry bytes,
 * and once one request failed the next ones are refused with that first error. Every body it
 * sends is a buffer, so the SDK signs the body's SHA-256 (x-amz-content-sha256) and the server
 * refuses bytes corrupted on the way; with `contentMd5` each put and part also carries a
 * Content-MD5 (a second check, for stores that verify only that).
 */
class CheckingSender {
  readonly partMd5s = new Map<number, Buffer>();
  singleMd5: Buffer | undefined;
  firstError: unknown;

  constructor(
    private readonly client: S3Client,
    private readonly signal: AbortSignal | undefined,
    private readonly contentMd5: boolean,
    /**
     * Attempts per request. 1 for a replayable body (bytes, a Blob): the retry layer can send the
     * whole save again. A stream's bytes only this upload holds (a part, or the head read ahead), so its
     * requests are retried here, as B2 retries on a fresh upload URL.
     */
    private readonly attempts: number = 1,
  ) {}

  /** Throws the first failure, if there was one. */
  check(): void {
    if (this.firstError !== undefined) throw this.firstError;
  }

  async send(command: { input: object }): Promise<unknown> {
    const cleanup = command instanceof AbortMultipartUploadCommand;
    if (!cleanup) {
      this.check();
      if (this.signal?.aborted) {
        this.firstError = abortedError('save', undefined, undefined, this.signal.reason);
        throw this.firstError;
      }
    }
    if (this.contentMd5 && (command instanceof UploadPartCommand || command instanceof PutObjectCommand)) {
      const input = command.input as { Body?: unknown; ContentMD5?: string; PartNumber?: number };
      if (input.Body instanceof Uint8Array) {
        const digest = md5(input.Body);
        input.ContentMD5 = digest.toString('base64');
        if (command instanceof UploadPartCommand) this.partMd5s.set(input.PartNumber!, digest);
        else this.singleMd5 = digest;
      }
    }
    // Only the transfers of bytes are cut short by the signal. CreateMultipartUpload and
    // CompleteMultipartUpload run to their end once sent, so the upload id is always known (and
    // the clean-up can abort it) and an abort never reports failure for an object that was stored.
    const cancellable = command instanceof UploadPartCommand || command instanceof PutObjectCommand;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.client.send(command as never, cancellable ? { abortSignal: this.signal } : {});
      } catch (err) {
        const temporary = mapS3Error(err, { bucket: '' })?.code === 'UNAVAILABLE';
        if (!cleanup && temporary && attempt < this.attempts && !this.signal?.aborted && this.firstError === undefined) {
          // Full jitter up to 100 ms, 200 ms, ... (the SDK's own backoff for its retries).
          await new Promise((resolve) => setTimeout(resolve, Math.random() * 100 * 2 ** (attempt - 1)));
          continue;
        }
        if (!cleanup && this.firstError === undefined) this.firstError = err;
        throw err;
      }
    }
  }

  /** The ETag the server should report for the stored object. */
  expectedEtag(): string {
    if (!this.contentMd5) return '';
    if (this.partMd5s.size === 0) return this.singleMd5?.toString('hex') ?? '';
    const ordered = [...this.partMd5s.entries()].sort((a, b) => a[0] - b[0]).map(([, d]) => d);
    return `${md5(Buffer.concat(ordered)).toString('hex')}-${ordered.length}`;
  }
}

/** Attempts per request of a streamed upload (see CheckingSender), as many as the SDK's default. */
const STREAM_REQUEST_ATTEMPTS = 3;

/** S3 accepts at most this many parts in one upload. */
const MAX_PARTS = 10_000;

/** Slack for the server's clock resolution (RGW and AWS report whole seconds in places). */
const CLOCK_SLACK_MS = 1000;

/**
 * After the SDK retried CreateMultipartUpload, an earlier try may have created an upload whose
 * answer was lost: nobody knows its id, so nothing would ever abort it. Aborts the uploads of this
 * key that this caller initiated in the moments before its own (best effort; a server without
 * ListMultipartUploads leaves them to the bucket's lifecycle rule). Another writer's upload of the
 * same key begun in that window would be aborted too: its save then fails with a typed error, and
 * no object is lost or torn.
 */
async function abortLostUploads(client: S3Client, Bucket: string, Key: string, ours: string, tookMs: number): Promise<void> {
  try {
    const listed = await client.send(new ListMultipartUploadsCommand({ Bucket, Prefix: Key }));
    const uploads = (listed.Uploads ?? []).filter((u) => u.Key === Key);
    const own = uploads.find((u) => u.UploadId === ours);
    if (!own?.Initiated) return;
    const from = own.Initiated.getTime() - tookMs - CLOCK_SLACK_MS;
    const lost = uploads.filter(
      (u) =>
        u.UploadId !== ours &&
        u.Initiated &&
        u.Initiated.getTime() >= from &&
        u.Initiated.getTime() <= own.Initiated!.getTime() &&
        u.Initiator?.ID === own.Initiator?.ID,
    );
    await Promise.all(lost.map((u) => client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: u.UploadId })).catch(() => undefined)));
  } catch {
    // Best effort (see above).
  }
}

/**
 * Sends a body already known to be larger than one part in parts of `partSize`, at most
 * `queueSize` at a time (see CheckingSender for their checksums). On any failure (the body's, a request's, or
 * an abort) it stops reading and sending, waits for the requests in flight, aborts the multipart
 * upload and rethrows: no parts are left and nothing becomes visible under the key.
 */
async function uploadParts(
  head: Buffer[],
  input: AsyncIterator<unknown>,
  plan: UploadPlan,
  sender: CheckingSender,
): Promise<{ size: number; etag: string | undefined; parts: number }> {
  const { Bucket, Key, IfNoneMatch, ContentType, CacheControl, ContentDisposition, Metadata, ACL, ServerSideEncryption, SSEKMSKeyId } = plan.params;
  const creating = Date.now();
  const created = (await sender.send(
    new CreateMultipartUploadCommand({ Bucket, Key, ContentType, CacheControl, ContentDisposition, Metadata, ACL, ServerSideEncryption, SSEKMSKeyId }),
  )) as { UploadId?: string; $metadata?: { attempts?: number } };
  const UploadId = created.UploadId;
  if ((created.$metadata?.attempts ?? 1) > 1) await abortLostUploads(plan.client, Bucket!, Key!, UploadId!, Date.now() - creating);
  const pool = new PartPool(plan.partSize, plan.queueSize + 1);
  const inFlight = new Set<Promise<void>>();
  const parts: CompletedPart[] = [];
  let partsSent = 0;
  let size = 0;

  const send = (buffer: Buffer, length: number): void => {
    const PartNumber = ++partsSent;
    if (PartNumber > MAX_PARTS) {
      throw new MediaStorageError('TOO_LARGE', `The body needs more than ${MAX_PARTS} parts of ${plan.partSize} bytes; raise partSize`, { operation: 'save' });
    }
    const request = (async () => {
      try {
        const result = (await sender.send(
          new UploadPartCommand({ Bucket, Key, UploadId, PartNumber, Body: buffer.subarray(0, length), ContentLength: length }),
        )) as { ETag?: string };
        parts.push({ PartNumber, ETag: result.ETag });
      } catch {
        // The sender keeps the first error; the loop below stops on it.
      } finally {
        pool.give(buffer);
      }
    })();
    inFlight.add(request);
    void request.then(() => inFlight.delete(request));
  };

  try {
    let buffer = await pool.take();
    let filled = 0;
    let pending: Buffer | undefined;
    const chunks = (async function* () {
      yield* head.splice(0);
      for (;;) {
        const next = await input.next();
        if (next.done) return;
        yield next.value as Buffer;
      }
    })();
    for await (const chunk of chunks) {
      pending = chunk;
      size += chunk.length;
      while (pending.length > 0) {
        const n = Math.min(pending.length, plan.partSize - filled);
        pending.copy(buffer, filled, 0, n);
        filled += n;
        pending = pending.subarray(n);
        if (filled === plan.partSize) {
          sender.check();
          send(buffer, filled);
          // Waits here while queueSize parts are in flight: this is what bounds the memory.
          buffer = await pool.take();
          filled = 0;
        }
      }
    }
    if (filled > 0) send(buffer, filled);
    else pool.give(buffer);
    await Promise.all(inFlight);
    sender.check();
    parts.sort((a, b) => a.PartNumber! - b.PartNumber!);
    const completed = (await sender.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId, IfNoneMatch, MultipartUpload: { Parts: parts } }))) as {
      ETag?: string;
    };
    return { size, etag: unquote(completed.ETag), parts: parts.length };
  } catch (err) {
    await Promise.allSettled(inFlight);
    // Best effort: if even this fails, the bucket's AbortIncompleteMultipartUpload rule (docs/s3.md)
    // removes the parts later; the error that stopped the upload is the one to report.
    await sender.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId })).catch(() => undefined);
    throw err;
  }
}

/**
 * Uploads a body stream of any length with bounded memory: one PutObject for a body of known
 * length up to `multipartThreshold` or a stream that ends within one part; parts otherwise (see
 * {@link uploadParts}). Rejects with the body's own error when the body was the cause (too large,
 * aborted, broken), else with the first failed request's.
 */
export async function uploadBody(body: PreparedBody, plan: UploadPlan): Promise<UploadOutcome> {
  const sender = new CheckingSender(plan.client, plan.signal, plan.contentMd5, body.replayable || !plan.retryRequests ? 1 : STREAM_REQUEST_ATTEMPTS);
  if (body.buffer && body.buffer.length <= plan.multipartThreshold) {
    // Bytes given in memory have passed the size checks already: sent as they are, without a
    // trip through the guarded stream (which costs more than the request for small bodies).
    const size = body.buffer.length;
    const result = (await sender.send(new PutObjectCommand({ ...plan.params, Body: body.buffer, ContentLength: size }))) as { ETag?: string };
    plan.onProgress?.({ loaded: size, total: size });
    return { size, etag: unquote(result.ETag), parts: 0, expectedEtag: sender.expectedEtag() };
  }
  const input = body.stream()[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  let ended = false;
  // A body of known length within the threshold is read whole and sent in one request; any other
  // body is read up to one part, so a stream of unknown length never holds more than that here.
  const limit = plan.knownSize !== undefined && plan.knownSize <= plan.multipartThreshold ? plan.knownSize : plan.partSize;
  while (size <= limit) {
    const next = await input.next();
    if (next.done) {
      ended = true;
      break;
    }
    const chunk = next.value as Buffer;
    head.push(chunk);
    size += chunk.length;
  }

  if (ended) {
    const body = head.length === 1 ? head[0]! : Buffer.concat(head, size);
    const result = (await sender.send(new PutObjectCommand({ ...plan.params, Body: body, ContentLength: size }))) as { ETag?: string };
    return { size, etag: unquote(result.ETag), parts: 0, expectedEtag: sender.expectedEtag() };
  }
  try {
    const sent = await uploadParts(head, input, plan, sender);
    return { ...sent, expectedEtag: sender.expectedEtag() };
  } catch (err) {
    // The body's own failure explains it best; tearing down streams may add incidental AbortErrors.
    throw isMediaStorageError(err) ? err : (sender.firstError ?? err);
  } finally {
    // Stop reading the caller's stream when the upload gave up early.
    await input.return?.().catch(() => undefined);
  }
}
