import type { Readable } from 'node:stream';
import type { HeadObjectCommandOutput, PutObjectCommandInput } from '@aws-sdk/client-s3';
import { BaseStorage, type WriteOptions } from '../core/base.js';
import { resolveOptions } from '../core/definition.js';
import { s3Backend } from './definition.js';
import type { PresignPlan } from '../core/direct-upload.js';
import type { PreparedBody } from '../core/body.js';
import { DEFAULT_CONTENT_TYPE } from '../core/content-type.js';
import type { ErrorMapping } from '../core/error-mapping.js';
import { MediaStorageError } from '../core/errors.js';
import { downloadFilename } from '../core/download.js';
import { contentDisposition } from '../core/serving.js';
import { encodeKeyPath, normalizeLocation } from '../core/keys.js';
import { decodeHeaderValue, encodeHeaderValue, type MetadataRules } from '../core/metadata.js';
import type { Capabilities, CopyOptions, DirectUpload, ListPage, ObjectInfo, ReadOptions, UrlOptions } from '../core/types.js';
import {
  checkCredentials,
  checkTimeout,
  checkEndpoint,
  CONNECT_TIMEOUT_MS,
  IDLE_TIMEOUT_MS,
  MAX_EXPIRES_IN,
  MAX_METADATA_BYTES,
  MAX_PART_SIZE,
  MiB,
  MIN_PART_SIZE,
  positiveInteger,
  S3_MAX_KEY_BYTES,
  type S3StorageOptions,
} from './config.js';
import { mapS3Error, MissingBucketError } from './errors.js';
import { ObjectHeads } from './head.js';
import { listPage } from './list.js';
import { CopyObjectCommand, DeleteObjectCommand, GetObjectCommand, loadPresignedPost, loadPresigner, PutObjectCommand, S3Client } from './sdk.js';
import { unquote, uploadBody } from './upload.js';

/** A key as the AWS SDKs put it in a URL path: each segment RFC 3986-encoded, `'()!*` included. */
function encodeKeyPathStrict(key: string): string {
  return encodeKeyPath(key).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function stripTrailingSlash(url: string): string {
  return url.replace(/\/+$/, '');
}

/**
 * Media in an S3 bucket. Writes are atomic (S3 makes an object visible only once complete);
 * streams of unknown length go up in parts with bounded memory, and a failed or aborted upload
 * is aborted on the server so no parts are left.
 */
export class S3Storage extends BaseStorage {
  readonly name = 's3';
  readonly capabilities: Readonly<Capabilities>;
  readonly client: S3Client;
  readonly bucket: string;
  /** The key prefix inside the bucket (`media/`), or empty. */
  readonly location: string;
  private readonly options: S3StorageOptions;
  private readonly visibility: 'public' | 'private';
  private readonly acl: string | undefined;
  /** Multipart settings in effect (see the options). */
  readonly partSize: number;
  readonly multipartThreshold: number;
  readonly queueSize: number;
  private readonly defaultExpiresIn: number;
  private publicBase: Promise<string> | undefined;
  /** HeadObject, with the bucket's existence behind its 404s. */
  private readonly heads: ObjectHeads;
  private readonly ownsClient: boolean;

  constructor(given: S3StorageOptions) {
    const options = resolveOptions(s3Backend, given);
    if (options.bucket.trim() === '') {
      throw new MediaStorageError('CONFIG', 'S3Storage needs a bucket name', { backend: 's3' });
    }
    positiveInteger(options.partSize, 'partSize', MIN_PART_SIZE, MAX_PART_SIZE);
    positiveInteger(options.multipartThreshold, 'multipartThreshold', 1, MAX_PART_SIZE);
    positiveInteger(options.queueSize, 'queueSize', 1, 64);
    positiveInteger(options.defaultExpiresIn, 'defaultExpiresIn', 1, MAX_EXPIRES_IN);
    super(options);
    if (options.visibility !== undefined && options.visibility !== 'public' && options.visibility !== 'private') {
      throw new MediaStorageError('CONFIG', 'S3Storage: visibility must be "public" or "private"', { backend: 's3' });
    }
    checkEndpoint(options.endpoint, 'endpoint');
    checkEndpoint(options.publicBaseUrl, 'publicBaseUrl');
    checkCredentials(options.credentials);
    checkTimeout(options.timeout);
    if (options.sseKmsKeyId && options.serverSideEncryption !== 'aws:kms') {
      throw new MediaStorageError('CONFIG', 'S3Storage: sseKmsKeyId needs serverSideEncryption: "aws:kms"', { backend: 's3' });
    }
    this.options = options;
    this.bucket = options.bucket;
    this.location = normalizeLocation(options.prefix);
    this.visibility = options.visibility ?? 'private';
    if (options.ifExists !== undefined && options.ifExists !== 'overwrite' && options.ifExists !== 'rename' && options.ifExists !== 'fail') {
      throw new MediaStorageError('CONFIG', 'S3Storage: ifExists must be "overwrite", "rename" or "fail"', { backend: 's3' });
    }
    this.defaultIfExists = options.ifExists ?? 'overwrite';
    this.acl = options.acl === false ? undefined : (options.acl ?? (this.visibility === 'public' ? 'public-read' : undefined));
    this.partSize = options.partSize ?? MIN_PART_SIZE;
    this.multipartThreshold = options.multipartThreshold ?? 32 * MiB;
    this.queueSize = options.queueSize ?? 4;
    this.defaultExpiresIn = options.defaultExpiresIn ?? 3600;
    this.ownsClient = options.client === undefined;
    const timeout = options.timeout ?? IDLE_TIMEOUT_MS;
    this.client =
      options.client ??
      new S3Client({
        region: options.region ?? (options.endpoint ? 'us-east-1' : undefined),
        endpoint: options.endpoint,
        forcePathStyle: options.forcePathStyle ?? options.endpoint !== undefined,
        credentials: options.credentials,
        requestChecksumCalculation: options.requestChecksumCalculation ?? 'WHEN_REQUIRED',
        responseChecksumValidation: options.responseChecksumValidation ?? 'WHEN_REQUIRED',
        // The SDK waits forever by default: a server that stops answering would hang a save.
        // These fail the request instead, as UNAVAILABLE.
        // (requestTimeout would bound a whole request, however large its body: the idle time is the one to bound.)
        requestHandler: { connectionTimeout: Math.min(CONNECT_TIMEOUT_MS, timeout), socketTimeout: timeout },
        // One attempt per call: retrying is the retry layer's (withRetry, in createMediaStorage's
        // default stack). SDK retries under it would multiply the attempts (3 × 4 by default).
        maxAttempts: 1,
      });
    this.heads = new ObjectHeads(this.client, this.bucket);
    this.capabilities = Object.freeze({
      publicUrls: this.visibility === 'public',
      signedUrls: true,
      downloadUrls: true,
      rangeReads: true,
      serverSideCopy: true,
      metadata: true,
      // Only a server that enforces If-None-Match makes "exactly one of two writers wins" true.
      atomicCreate: options.conditionalWrites === true,
      // SSE-KMS ETags are not MD5s of the bytes.
      md5Etag: options.serverSideEncryption !== 'aws:kms',
      // ListObjectsV2 gives up to 1,000 keys a request, in UTF-8 byte order; HeadObject one.
      listingAnswersExists: true,
      directUploads: true,
    });
  }

  // ----------------------------------------------------------------- direct uploads

  /**
   * A direct upload straight to the bucket: a presigned PUT, or with `maxSize` a POST policy that
   * caps the size (a presigned PUT cannot). The Content-Type and Content-Disposition the serving
   * rules decided are signed (PUT headers, POST policy conditions), as are the key and the expiry:
   * S3 enforces them all.
   */
  protected override async presignObjectUpload(key: string, plan: PresignPlan): Promise<DirectUpload> {
    const { contentType, expiresIn, maxSize } = plan;
    const params = this.writeParams(this.fullKey(key), contentType, undefined, undefined, plan.contentDisposition);
    const expiresAt = new Date(Date.now() + expiresIn * 1000);
    const enforced = { key: true, contentType: true, maxSize: maxSize !== undefined, expiry: true };
    // Headers the browser sends itself.
    const headers: Record<string, string> = { 'Content-Type': contentType };
    if (params.CacheControl) headers['Cache-Control'] = params.CacheControl;
    if (params.ContentDisposition) headers['Content-Disposition'] = params.ContentDisposition;
    if (params.ServerSideEncryption) headers['x-amz-server-side-encryption'] = params.ServerSideEncryption;
    if (params.SSEKMSKeyId) headers['x-amz-server-side-encryption-aws-kms-key-id'] = params.SSEKMSKeyId;

    if (maxSize === undefined) {
      // The ACL is a signed header too: left in the query string (where the presigner would hoist
      // it), Ceph RGW ignores it and the object is stored private.
      const putHeaders = params.ACL ? { ...headers, 'x-amz-acl': params.ACL } : headers;
      const { getSignedUrl } = await loadPresigner('presignUpload');
      const url = await getSignedUrl(this.client, new PutObjectCommand(params), {
        expiresIn,
        // The presigner leaves these unsigned unless asked: signed, the browser must send them as given.
        signableHeaders: new Set(['content-type', ...(params.ContentDisposition ? ['content-disposition'] : []), ...(params.ACL ? ['x-amz-acl'] : [])]),
        unhoistableHeaders: new Set(params.ACL ? ['x-amz-acl'] : []),
      });
      return { method: 'PUT', url, headers: putHeaders, key, contentType, expiresAt, enforced };
    }
    const fields: Record<string, string> = { ...headers };
    if (params.ACL) fields.acl = params.ACL;
    const { createPresignedPost } = await loadPresignedPost();
    const conditions: Parameters<typeof createPresignedPost>[1]['Conditions'] = [['content-length-range', 1, maxSize]];
    for (const [name, value] of Object.entries(fields)) conditions.push({ [name]: value });
    const post = await createPresignedPost(this.client, { Bucket: this.bucket, Key: params.Key!, Conditions: conditions, Fields: fields, Expires: expiresIn });
    return { method: 'POST', url: post.url, headers: {}, fields: post.fields, fileField: 'file', key, contentType, expiresAt, enforced };
  }

  protected override defaultUploadExpiresIn(): number {
    return this.defaultExpiresIn;
  }

  // ----------------------------------------------------------------- driver

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    const fullKey = this.fullKey(key);
    // Without conditional writes the core has checked the key is free (check-then-write).
    const conditional = options.ifExists === 'fail' && this.options.conditionalWrites === true;
    const params = this.writeParams(fullKey, body.contentType, options.cacheControl, options.metadata, options.contentDisposition);
    if (conditional) params.IfNoneMatch = '*';
    const sent = await uploadBody(body, {
      client: this.client,
      retryRequests: this.ownsClient,
      params,
      knownSize: body.size,
      contentMd5: this.options.contentMd5 === true,
      multipartThreshold: this.multipartThreshold,
      partSize: this.partSize,
      queueSize: this.queueSize,
      signal: options.signal,
      onProgress: options.onProgress,
    });
    this.heads.noteBucket(true);
    const info: ObjectInfo = {
      key,
      size: sent.size,
      contentType: body.contentType,
      etag: sent.etag || undefined,
      lastModified: new Date(),
      ...(params.CacheControl ? { cacheControl: params.CacheControl } : {}),
      ...(options.metadata ? { metadata: { ...options.metadata } } : {}),
    };
    if (sent.parts === 0) return info;
    // After a multipart upload, check what the server assembled (Ceph RGW also answers
    // CompleteMultipartUpload without an ETag; HeadObject has it).
    const stored = await this.heads.head(fullKey);
    const etag = unquote(stored?.ETag);
    const mismatch =
      !stored ||
      stored.ContentLength !== sent.size ||
      (sent.expectedEtag !== '' && this.capabilities.md5Etag && etag && /^[0-9a-f]{32}-\d+$/.test(etag) && etag !== sent.expectedEtag);
    if (mismatch) {
      if (stored) await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: fullKey })).catch(() => undefined);
      throw new MediaStorageError(
        'UNAVAILABLE',
        `The object the server assembled under "${key}" does not match the bytes sent (size ${stored?.ContentLength} of ${sent.size}, etag ${etag} instead of ${sent.expectedEtag}); it was removed, try again`,
        { key },
      );
    }
    return { ...info, etag, lastModified: stored.LastModified ?? info.lastModified };
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const range = options.range ? `bytes=${options.range.start}-${options.range.end ?? ''}` : undefined;
    const result = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key), Range: range }), { abortSignal: options.signal });
    return result.Body as Readable;
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const head = await this.heads.head(this.fullKey(key));
    return head ? this.infoFromHead(key, head) : undefined;
  }

  protected async deleteObject(key: string): Promise<void> {
    // S3 answers 204 whether or not the key existed: deletes are idempotent.
    await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.fullKey(key) }));
  }

  protected async listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
    return listPage(this.client, this.bucket, this.location, (key) => this.servingRule.typeFromKey(key), prefix, options);
  }

  protected override async copyObject(from: string, to: string, _options: CopyOptions): Promise<ObjectInfo> {
    const target = this.fullKey(to);
    await this.client.send(
      new CopyObjectCommand({
        Bucket: this.bucket,
        Key: target,
        CopySource: `${this.bucket}/${encodeKeyPath(this.fullKey(from))}`,
        MetadataDirective: 'COPY',
        // ACLs and encryption are not copied with the object.
        ACL: this.acl as PutObjectCommandInput['ACL'],
        ServerSideEncryption: this.options.serverSideEncryption,
        SSEKMSKeyId: this.options.sseKmsKeyId,
      }),
    );
    const head = await this.heads.head(target);
    if (!head) throw new MediaStorageError('UNAVAILABLE', `The copy to "${to}" is not visible yet`, { key: to });
    return this.infoFromHead(to, head);
  }

  protected async objectUrl(key: string, options: UrlOptions): Promise<string> {
    const fullKey = this.fullKey(key);
    const download = downloadFilename(options.download, key);
    if (this.visibility === 'public' && options.expiresIn === undefined && download === undefined) {
      // On a custom domain the key is encoded as Django's filepath_to_uri does ('()!*~ kept), on
      // the bucket's own URL as boto3 and the SDK's presigner do (RFC 3986: '()!* escaped), so
      // each URL is byte for byte the one a Django app gives for the same object.
      const path = this.options.publicBaseUrl ? encodeKeyPath(fullKey) : encodeKeyPathStrict(fullKey);
      return `${await this.publicBaseUrl()}/${path}`;
    }
    // Response overrides (the download's Content-Disposition) are honoured only on signed URLs.
    // The core has checked expiresIn against capabilities.maxExpiresIn (S3's seven days).
    const expiresIn = Math.ceil(options.expiresIn ?? this.defaultExpiresIn);
    const command = new GetObjectCommand({
      Bucket: this.bucket,
      Key: fullKey,
      ResponseContentDisposition: download === undefined ? undefined : contentDisposition('attachment', download),
    });
    const { getSignedUrl } = await loadPresigner('signed URLs (a private storage, expiresIn or download)');
    return getSignedUrl(this.client, command, { expiresIn });
  }

  /** Closes the connections of the S3Client this storage made (a client passed in stays open). */
  override async close(): Promise<void> {
    if (this.ownsClient) this.client.destroy();
  }

  protected override metadataRules(): MetadataRules {
    return { maxTotalBytes: MAX_METADATA_BYTES, storedValue: encodeHeaderValue };
  }

  protected override mapError(err: unknown): ErrorMapping | undefined {
    const e = err as { name?: unknown; Code?: unknown } | null;
    // Any request that met NoSuchBucket (a save, list or read) settles the question for HEADs too.
    // (Not our own MissingBucketError: that answer is already remembered, and must expire.)
    if (e && !(err instanceof MissingBucketError) && (e.name === 'NoSuchBucket' || e.Code === 'NoSuchBucket')) this.heads.noteBucket(false);
    return mapS3Error(err, { bucket: this.bucket, endpoint: this.options.endpoint, region: this.options.region });
  }

  protected override secrets(): readonly (string | undefined)[] {
    return [this.options.credentials?.secretAccessKey, this.options.credentials?.sessionToken];
  }

  // ----------------------------------------------------------------- helpers

  /** The key in the bucket; the location prefix counts towards S3's limit, so a key valid alone may not fit. */
  private fullKey(key: string): string {
    const fullKey = this.location + key;
    if (Buffer.byteLength(fullKey, 'utf8') > S3_MAX_KEY_BYTES) {
      throw new MediaStorageError('INVALID_KEY', `The key with the location "${this.location}" is longer than S3's ${S3_MAX_KEY_BYTES} bytes`, { key });
    }
    return fullKey;
  }

  private infoFromHead(key: string, head: HeadObjectCommandOutput): ObjectInfo {
    return {
      key,
      size: head.ContentLength ?? 0,
      contentType: head.ContentType ?? DEFAULT_CONTENT_TYPE,
      etag: unquote(head.ETag) || undefined,
      lastModified: head.LastModified,
      ...(head.CacheControl ? { cacheControl: head.CacheControl } : {}),
      ...(head.Metadata && Object.keys(head.Metadata).length > 0
        ? { metadata: Object.fromEntries(Object.entries(head.Metadata).map(([k, v]) => [k, decodeHeaderValue(v)])) }
        : {}),
    };
  }

  /** The parameters every write sends: type, caching, ACL, encryption, and the serving rule's disposition. */
  private writeParams(
    fullKey: string,
    contentType: string,
    cacheControl: string | undefined,
    metadata: Record<string, string> | undefined,
    disposition: string | undefined,
  ): PutObjectCommandInput {
    const params: PutObjectCommandInput = { Bucket: this.bucket, Key: fullKey, ContentType: contentType };
    const cache = cacheControl ?? this.options.cacheControl;
    if (cache) params.CacheControl = cache;
    // Values HTTP headers cannot carry travel as RFC 2047 words (what S3 itself returns for them).
    if (metadata && Object.keys(metadata).length > 0) params.Metadata = Object.fromEntries(Object.entries(metadata).map(([k, v]) => [k, encodeHeaderValue(v)]));
    // A bucket serves bytes with their stored type and disposition, and cannot send nosniff or a
    // CSP: everything but the inline list is stored as an attachment (executable kinds arrive
    // here as application/octet-stream already).
    if (disposition) params.ContentDisposition = disposition;
    if (this.acl) params.ACL = this.acl as PutObjectCommandInput['ACL'];
    if (this.options.serverSideEncryption) params.ServerSideEncryption = this.options.serverSideEncryption;
    if (this.options.sseKmsKeyId) params.SSEKMSKeyId = this.options.sseKmsKeyId;
    return params;
  }

  /** Where public URLs start: the configured base, else the endpoint's (path or virtual-host style), else AWS's. */
  private publicBaseUrl(): Promise<string> {
    this.publicBase ??= (async () => {
      if (this.options.publicBaseUrl) return stripTrailingSlash(this.options.publicBaseUrl);
      const config = this.client.config;
      const pathStyle = this.options.forcePathStyle ?? (this.options.endpoint !== undefined || config.forcePathStyle === true);
      let endpoint = this.options.endpoint;
      if (!endpoint && config.endpoint) {
        const e = await config.endpoint();
        endpoint = `${e.protocol}//${e.hostname}${e.port ? `:${e.port}` : ''}${e.path ?? ''}`;
      }
      if (endpoint) {
        const url = new URL(endpoint);
        const path = stripTrailingSlash(url.pathname);
        return pathStyle ? `${url.origin}${path}/${this.bucket}` : `${url.protocol}//${this.bucket}.${url.host}${path}`;
      }
      const region = await config.region();
      return pathStyle ? `https://s3.${region}.amazonaws.com/${this.bucket}` : `https://${this.bucket}.s3.${region}.amazonaws.com`;
    })();
    this.publicBase.catch(() => {
      this.publicBase = undefined;
    });
    return this.publicBase;
  }
}
