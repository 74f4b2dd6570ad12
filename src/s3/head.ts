import type { Readable } from 'node:stream';
import type { HeadObjectCommandOutput } from '@aws-sdk/client-s3';
import { BUCKET_EXISTS_TTL_MS, BUCKET_MISSING_TTL_MS } from './config.js';
import { mapS3Error, MissingBucketError } from './errors.js';
import { GetObjectCommand, HeadBucketCommand, HeadObjectCommand, type S3Client } from './sdk.js';

/**
 * HeadObject for one bucket, with what it takes to make a HEAD's bodiless 404 and 403 say what
 * they mean: whether the bucket exists (asked once, remembered for a while) and why access failed.
 */
export class ObjectHeads {
  /** What is known about the bucket's existence, and until when (see {@link bucketMissing}). */
  private bucketKnown: { exists: boolean; until: number } | undefined;
  private bucketCheck: Promise<boolean> | undefined;

  constructor(
    private readonly client: S3Client,
    private readonly bucket: string,
  ) {}

  /**
   * HeadObject, or `undefined` when the object is absent. A HEAD's 404 has no body, so a missing
   * bucket looks like a missing key: the first 404 asks HeadBucket (once, shared by concurrent
   * calls, remembered for a while), and a missing bucket fails as NoSuchBucket (CONFIG) instead of
   * answering "absent" for every key. A found object costs one request, as does a missing key
   * while the answer is remembered.
   */
  async head(fullKey: string): Promise<HeadObjectCommandOutput | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: fullKey }));
      this.noteBucket(true);
      return head;
    } catch (err) {
      const code = mapS3Error(err, { bucket: this.bucket })?.code;
      if (code === 'PERMISSION') throw await this.whyForbidden(fullKey, err);
      if (code !== 'NOT_FOUND') throw err;
      if (await this.bucketMissing()) throw new MissingBucketError(err);
      return undefined;
    }
  }

  /**
   * A HEAD's 403 has no body, so it cannot say whether the secret is wrong (SignatureDoesNotMatch)
   * or the key may not read (AccessDenied). A one-byte GET of the same object gets the answer with
   * its error code; that error is thrown instead when it is one. Costs a request only on a 403.
   */
  private async whyForbidden(fullKey: string, headError: unknown): Promise<unknown> {
    try {
      const probe = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: fullKey, Range: 'bytes=0-0' }));
      (probe?.Body as Readable | undefined)?.destroy?.();
    } catch (err) {
      const e = err as { name?: unknown; Code?: unknown };
      const named = [e.Code, e.name].some((c) => typeof c === 'string' && c !== 'Unknown' && c !== 'UnknownError' && c !== 'NoSuchKey' && !/^\d+$/.test(c));
      if (named) return err;
    }
    return headError;
  }

  /** Whether the bucket is missing: the remembered answer while fresh, else HeadBucket's. */
  private async bucketMissing(): Promise<boolean> {
    const known = this.bucketKnown;
    if (known && Date.now() < known.until) return !known.exists;
    this.bucketCheck ??= this.checkBucket().finally(() => {
      this.bucketCheck = undefined;
    });
    return this.bucketCheck;
  }

  private async checkBucket(): Promise<boolean> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      this.noteBucket(true);
      return false;
    } catch (err) {
      const code = mapS3Error(err, { bucket: this.bucket })?.code;
      if (code === 'NOT_FOUND' || (err as { name?: unknown }).name === 'NoSuchBucket') {
        this.noteBucket(false);
        return true;
      }
      // 403: the bucket exists but these credentials may not HeadBucket it (s3:ListBucket).
      if (code === 'PERMISSION' || code === 'AUTH') this.noteBucket(true);
      // Anything else (unreachable, 5xx) decides nothing: the key's 404 stands, and the next 404 asks again.
      return false;
    }
  }

  noteBucket(exists: boolean): void {
    this.bucketKnown = { exists, until: Date.now() + (exists ? BUCKET_EXISTS_TTL_MS : BUCKET_MISSING_TTL_MS) };
  }
}
