import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import {
  AbortMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type PutObjectCommandInput,
  type S3Client,
} from '@aws-sdk/client-s3';
import { Upload } from '@aws-sdk/lib-storage';
import { abortedError, isMediaStorageError } from '../core/errors.js';

/** What {@link uploadBody} needs to know besides the bytes. */
export interface UploadPlan {
  client: S3Client;
  /** PutObject parameters without Body (lib-storage spreads them over the multipart calls). */
  params: Omit<PutObjectCommandInput, 'Body'>;
  /** Bodies up to this many bytes go in one PutObject; larger ones in parts. */
  multipartThreshold: number;
  partSize: number;
  queueSize: number;
  signal?: AbortSignal;
}

/** The outcome of an upload: what the server answered and what we sent. */
export interface UploadOutcome {
  size: number;
  /** ETag from the server's answer, quotes removed; may be empty (Ceph RGW after CompleteMultipartUpload). */
  etag: string | undefined;
  /** Number of parts, or 0 for a single PutObject. */
  parts: number;
  /** The ETag S3 computes for what we sent: MD5 of the bytes, or MD5 of the part MD5s with "-N". */
  expectedEtag: string;
}

function md5(data: Uint8Array): Buffer {
  return createHash('md5').update(data).digest();
}

export function unquote(etag: string | undefined): string | undefined {
  return etag?.replace(/^W\//, '').replace(/"/g, '');
}

/**
 * The client lib-storage talks through. It adds what lib-storage cannot: a Content-MD5 header on
 * every part and single put (the server checks it, so a part corrupted in transit is refused
 * rather than stored), the caller's AbortSignal on every request except the clean-up, and a stop
 * to further parts once one request failed (lib-storage's other queues would otherwise read and
 * send the rest of the body before giving up).
 */
class CheckingSender {
  readonly partMd5s = new Map<number, Buffer>();
  singleMd5: Buffer | undefined;
  firstError: unknown;

  constructor(
    private readonly client: S3Client,
    private readonly signal: AbortSignal | undefined,
  ) {}

  get config(): S3Client['config'] {
    return this.client.config;
  }

  async send(command: { input: object }): Promise<unknown> {
    const cleanup = command instanceof AbortMultipartUploadCommand;
    if (!cleanup) {
      if (this.firstError !== undefined) throw this.firstError;
      if (this.signal?.aborted) throw abortedError('save', undefined, undefined, this.signal.reason);
    }
    if (command instanceof UploadPartCommand || command instanceof PutObjectCommand) {
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
    try {
      return await this.client.send(command as never, cancellable ? { abortSignal: this.signal } : {});
    } catch (err) {
      if (!cleanup && this.firstError === undefined) this.firstError = err;
      throw err;
    }
  }

  /** The ETag the server should report for the stored object. */
  expectedEtag(): string {
    if (this.partMd5s.size === 0) return this.singleMd5?.toString('hex') ?? '';
    const ordered = [...this.partMd5s.entries()].sort((a, b) => a[0] - b[0]).map(([, d]) => d);
    return `${md5(Buffer.concat(ordered)).toString('hex')}-${ordered.length}`;
  }
}

/**
 * Uploads a body stream of any length with bounded memory: up to `multipartThreshold` bytes are
 * buffered and sent with one PutObject; past that, lib-storage sends `partSize` parts, at most
 * `queueSize` at a time. When the body fails (too large, aborted, broken) or a request fails,
 * the multipart upload is aborted before this rejects, so no parts are left behind and nothing
 * becomes visible under the key. Rejects with the body's own error when the body was the cause.
 */
export async function uploadBody(source: Readable, plan: UploadPlan): Promise<UploadOutcome> {
  const input = source[Symbol.asyncIterator]();
  const head: Buffer[] = [];
  let size = 0;
  let ended = false;
  while (size <= plan.multipartThreshold) {
    const next = await input.next();
    if (next.done) {
      ended = true;
      break;
    }
    const chunk = next.value as Buffer;
    head.push(chunk);
    size += chunk.length;
  }

  const sender = new CheckingSender(plan.client, plan.signal);
  if (ended) {
    const body = head.length === 1 ? head[0]! : Buffer.concat(head, size);
    const result = (await sender.send(new PutObjectCommand({ ...plan.params, Body: body, ContentLength: size }))) as { ETag?: string };
    return { size, etag: unquote(result.ETag), parts: 0, expectedEtag: sender.expectedEtag() };
  }

  let bodyError: unknown;
  async function* rest(): AsyncGenerator<Buffer> {
    try {
      yield* head.splice(0);
      for (;;) {
        const next = await input.next();
        if (next.done) return;
        size += (next.value as Buffer).length;
        yield next.value as Buffer;
      }
    } catch (err) {
      bodyError = err;
      throw err;
    }
  }
  const body = Readable.from(rest(), { objectMode: false });
  const upload = new Upload({
    client: sender as unknown as S3Client,
    params: { ...plan.params, Body: body },
    partSize: plan.partSize,
    queueSize: plan.queueSize,
    leavePartsOnError: false,
  });
  try {
    const result = await upload.done();
    return { size, etag: unquote(result?.ETag), parts: sender.partMd5s.size, expectedEtag: sender.expectedEtag() };
  } catch (err) {
    // The body's own failure (too large, aborted, broken) explains it best; else the first failed
    // request; tearing down the streams may add an incidental AbortError that explains nothing.
    throw (isMediaStorageError(bodyError) ? bodyError : undefined) ?? sender.firstError ?? bodyError ?? err;
  } finally {
    // Stop reading the caller's stream when the upload gave up early.
    body.destroy();
    await input.return?.().catch(() => undefined);
  }
}
