import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import {
  BlobSASPermissions,
  BlobServiceClient,
  StorageSharedKeyCredential,
  type BlobHTTPHeaders,
  type BlockBlobClient,
  type ContainerClient,
} from '@azure/storage-blob';
import { BaseStorage, DEFAULT_MAX_EXPIRES_IN, type WriteOptions } from '../core/base.js';
import type { PreparedBody } from '../core/body.js';
import { DEFAULT_CONTENT_TYPE } from '../core/content-type.js';
import type { PresignPlan } from '../core/direct-upload.js';
import { downloadFilename } from '../core/download.js';
import type { ErrorMapping } from '../core/error-mapping.js';
import { MediaStorageError } from '../core/errors.js';
import { encodeKeyPath, normalizeLocation } from '../core/keys.js';
import { decodeHeaderValue, encodeHeaderValue, type MetadataRules } from '../core/metadata.js';
import { sendInParts } from '../core/part-pool.js';
import { contentDisposition, type ServingOptions } from '../core/serving.js';
import { resolveOptions } from '../core/definition.js';
import { azureBackend, MAX_BLOCK_SIZE as AZURE_MAX_BLOCK_SIZE, type AzureConfig } from './definition.js';
import type { Capabilities, CopyOptions, DirectUpload, ListPage, ObjectInfo, ReadOptions, UrlOptions } from '../core/types.js';
import { isCode, mapAzureError } from './errors.js';

const MiB = 1024 * 1024;
/** Azure's longest blob name, in characters (location prefix included). */
const MAX_NAME_CHARS = 1024;
/** Put Block List takes at most 50,000 blocks; a block is at most 4,000 MiB. */
const MAX_BLOCKS = 50_000;
const MAX_BLOCK_SIZE = AZURE_MAX_BLOCK_SIZE;
/** All metadata of a blob, names and values, is at most 8 KiB. */
const MAX_METADATA_BYTES = 8192;
/** Time one request may take (each try), before the SDK retries it; a stalled service fails instead of hanging. */
const TRY_TIMEOUT_MS = 120_000;
/** Prefix of metadata names stored escaped (see encodeMetadataName). */
const ESCAPED_NAME = 'msx_';

/** AzureBlobStorage's options: those configuration can set (documented in ./definition.ts) and a client to use. */
export interface AzureBlobStorageOptions extends AzureConfig, ServingOptions {
  /** A BlobServiceClient to use instead of making one from the connection string (it needs a StorageSharedKeyCredential for signed URLs). */
  serviceClient?: BlobServiceClient;
  /** @deprecated Use `prefix` (the same meaning). */
  location?: string;
}

function configError(message: string): MediaStorageError {
  return new MediaStorageError('CONFIG', `AzureBlobStorage: ${message}`, { backend: 'azure' });
}

function wholeNumber(value: number | undefined, name: string, min: number, max: number): void {
  if (value !== undefined && !(Number.isInteger(value) && value >= min && value <= max))
    throw configError(`${name} must be a whole number from ${min} to ${max}`);
}

/** The AccountKey in a connection string, for redaction. */
function accountKeyOf(connectionString: string | undefined): string | undefined {
  return /(?:^|;)\s*AccountKey=([^;]+)/i.exec(connectionString ?? '')?.[1];
}

/**
 * Azure metadata names are C# identifiers (letters, digits, `_`, not starting with a digit): a
 * name that is one is stored as it is; any other (`uploaded-by`) is stored as `msx_` and the name
 * with every character but `a-z0-9` written `_` + two hex digits (`msx_uploaded_2dby`), and read
 * back the same way. Names are lower-case already (the core's metadata rule).
 */
export function encodeMetadataName(name: string): string {
  if (/^[a-z_][a-z0-9_]*$/.test(name) && !name.startsWith(ESCAPED_NAME)) return name;
  return ESCAPED_NAME + name.replace(/[^a-z0-9]/g, (c) => `_${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

/**
 * The metadata name a stored Azure name stands for: the reverse of {@link encodeMetadataName}
 * (`msx_uploaded_2dby` → `uploaded-by`), lower-cased; a name without the `msx_` prefix is itself.
 */
export function decodeMetadataName(stored: string): string {
  const name = stored.toLowerCase();
  if (!name.startsWith(ESCAPED_NAME)) return name;
  return name.slice(ESCAPED_NAME.length).replace(/_([0-9a-f]{2})/g, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/**
 * Media in an Azure Blob Storage container. Saves are atomic, streams of any length go up in
 * blocks with bounded memory, `ifExists: 'fail'` is atomic, and signed read URLs and direct
 * uploads are service SAS tokens bound to the blob.
 */
export class AzureBlobStorage extends BaseStorage {
  readonly name = 'azure';
  readonly capabilities: Readonly<Capabilities>;
  readonly container: string;
  /** The key prefix inside the container (`media/`), or empty. */
  readonly location: string;
  readonly serviceClient: BlobServiceClient;
  readonly containerClient: ContainerClient;
  /** Upload settings in effect (see the options). */
  readonly blockSize: number;
  readonly concurrency: number;
  readonly singleUploadThreshold: number;
  private readonly options: AzureBlobStorageOptions;
  private readonly visibility: 'public' | 'private';
  private readonly defaultExpiresIn: number;
  private readonly accountKey: string | undefined;

  constructor(given: AzureBlobStorageOptions) {
    const options = resolveOptions(azureBackend, given);
    if (typeof options.container !== 'string' || !/^(?=.{3,63}$)[a-z0-9]+(-[a-z0-9]+)*$/.test(options.container)) {
      throw configError('container must be a container name: 3 to 63 lower-case letters, digits and single dashes (not at the start or end)');
    }
    wholeNumber(options.blockSize, 'blockSize', MiB, MAX_BLOCK_SIZE);
    wholeNumber(options.concurrency, 'concurrency', 1, 64);
    wholeNumber(options.singleUploadThreshold, 'singleUploadThreshold', 1, 5000 * MiB);
    wholeNumber(options.defaultExpiresIn, 'defaultExpiresIn', 1, DEFAULT_MAX_EXPIRES_IN);
    super(options);
    if (options.visibility !== undefined && options.visibility !== 'public' && options.visibility !== 'private')
      throw configError('visibility must be "public" or "private"');
    if (options.ifExists !== undefined && !['overwrite', 'rename', 'fail'].includes(options.ifExists))
      throw configError('ifExists must be "overwrite", "rename" or "fail"');
    this.options = options;
    this.container = options.container;
    this.location = normalizeLocation(options.prefix);
    this.visibility = options.visibility ?? 'private';
    this.defaultIfExists = options.ifExists ?? 'overwrite';
    this.defaultExpiresIn = options.defaultExpiresIn ?? 3600;
    this.blockSize = options.blockSize ?? 8 * MiB;
    this.concurrency = options.concurrency ?? 4;
    this.singleUploadThreshold = options.singleUploadThreshold ?? 32 * MiB;
    const connectionString = options.connectionString ?? process.env.AZURE_STORAGE_CONNECTION_STRING;
    this.accountKey = accountKeyOf(connectionString);
    if (options.serviceClient) {
      this.serviceClient = options.serviceClient;
    } else {
      if (!connectionString) throw configError('needs a connection string: pass connectionString or set AZURE_STORAGE_CONNECTION_STRING');
      try {
        this.serviceClient = BlobServiceClient.fromConnectionString(connectionString, { retryOptions: { tryTimeoutInMs: TRY_TIMEOUT_MS } });
      } catch (err) {
        // The SDK's message may quote the connection string: only say what is wrong with it.
        throw new MediaStorageError(
          'CONFIG',
          'AzureBlobStorage: the connection string is not valid (it needs AccountName and AccountKey, or a SAS, and an endpoint)',
          { backend: 'azure', cause: err },
        ).withSecretsRedacted([connectionString, this.accountKey]);
      }
    }
    this.containerClient = this.serviceClient.getContainerClient(this.container);
    const canSign = this.serviceClient.credential instanceof StorageSharedKeyCredential;
    this.capabilities = Object.freeze({
      publicUrls: this.visibility === 'public',
      signedUrls: canSign,
      downloadUrls: canSign,
      rangeReads: true,
      serverSideCopy: true,
      metadata: true,
      atomicCreate: true,
      md5Etag: false,
      directUploads: canSign,
      // Azurite lists by UTF-16 code units (U+1F600 before U+FF21), S3 and B2 by UTF-8 bytes, and
      // Azure documents its order only as "lexicographical": sync sorts this side itself.
      sortedListing: false,
    });
  }

  // ----------------------------------------------------------------- driver

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    const blob = this.blockBlob(key);
    const blobHTTPHeaders = this.httpHeaders(body.contentType, options.cacheControl, options.contentDisposition);
    const metadata = this.storedMetadata(options.metadata);
    const conditions = options.ifExists === 'fail' ? { ifNoneMatch: '*' } : undefined;
    const common = { blobHTTPHeaders, metadata, conditions, abortSignal: options.signal };
    if (body.buffer && body.buffer.length <= this.singleUploadThreshold) {
      const done = await blob.upload(body.buffer, body.buffer.length, common);
      options.onProgress?.({ loaded: body.buffer.length, total: body.buffer.length });
      return this.infoAfterWrite(key, body, body.buffer.length, done.etag, done.lastModified, blobHTTPHeaders, options.metadata);
    }
    const input = body.stream()[Symbol.asyncIterator]();
    try {
      // Read up to one block (or the whole of a known body within the threshold): a body that ends
      // there goes in one Put Blob, anything longer in blocks.
      const limit = body.size !== undefined && body.size <= this.singleUploadThreshold ? body.size : this.blockSize;
      const head: Buffer[] = [];
      let headBytes = 0;
      let ended = false;
      while (headBytes <= limit) {
        const next = await input.next();
        if (next.done) {
          ended = true;
          break;
        }
        head.push(next.value as Buffer);
        headBytes += (next.value as Buffer).length;
      }
      if (ended) {
        const whole = head.length === 1 ? head[0]! : Buffer.concat(head, headBytes);
        const done = await blob.upload(whole, whole.length, common);
        return this.infoAfterWrite(key, body, whole.length, done.etag, done.lastModified, blobHTTPHeaders, options.metadata);
      }
      // Block IDs of this upload only (all of one length, as Azure requires): a concurrent upload
      // of the same key stages its own, and whichever commits last is the whole new version.
      const uploadId = randomBytes(9).toString('hex');
      const ids: string[] = [];
      const chunks = (async function* () {
        yield* head;
        for (;;) {
          const next = await input.next();
          if (next.done) return;
          yield next.value as Buffer;
        }
      })();
      const { size } = await sendInParts(chunks, this.blockSize, this.concurrency, async (part, index) => {
        if (index >= MAX_BLOCKS)
          throw new MediaStorageError('TOO_LARGE', `The body needs more than ${MAX_BLOCKS} blocks of ${this.blockSize} bytes; raise blockSize`, { key });
        const id = Buffer.from(`${uploadId}${String(index).padStart(6, '0')}`).toString('base64');
        ids[index] = id;
        await blob.stageBlock(id, part, part.length, { abortSignal: options.signal });
      });
      // Nothing is visible until this call, which makes every staged block the blob at once.
      const done = await blob.commitBlockList(ids, common);
      return this.infoAfterWrite(key, body, size, done.etag, done.lastModified, blobHTTPHeaders, options.metadata);
    } finally {
      await input.return?.().catch(() => undefined);
    }
  }

  protected async readObject(key: string, options: ReadOptions): Promise<Readable> {
    const { range } = options;
    const offset = range?.start ?? 0;
    const count = range?.end !== undefined ? range.end - range.start + 1 : undefined;
    const res = await this.blockBlob(key).download(offset, count, { abortSignal: options.signal });
    return res.readableStreamBody as Readable;
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    try {
      const p = await this.blockBlob(key).getProperties();
      return {
        key,
        size: p.contentLength ?? 0,
        contentType: p.contentType ?? DEFAULT_CONTENT_TYPE,
        etag: unquote(p.etag),
        lastModified: p.lastModified,
        ...(p.cacheControl ? { cacheControl: p.cacheControl } : {}),
        ...(p.metadata && Object.keys(p.metadata).length > 0 ? { metadata: this.givenMetadata(p.metadata) } : {}),
      };
    } catch (err) {
      // A HEAD answer has no body: Azure names the cause in x-ms-error-code, so a missing
      // container (ContainerNotFound, CONFIG) is never taken for a missing blob.
      if (isCode(err, 'BlobNotFound') || ((err as { statusCode?: number }).statusCode === 404 && !isCode(err, 'ContainerNotFound'))) return undefined;
      throw err;
    }
  }

  protected async deleteObject(key: string): Promise<void> {
    try {
      await this.blockBlob(key).delete({ deleteSnapshots: 'include' });
    } catch (err) {
      if (isCode(err, 'BlobNotFound')) return;
      throw err;
    }
  }

  protected async listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
    const items: ObjectInfo[] = [];
    let token = options.cursor;
    do {
      const pages = this.containerClient
        .listBlobsFlat({ prefix: this.location + prefix })
        .byPage({ continuationToken: token, maxPageSize: Math.min(5000, options.limit - items.length) });
      const page = (await pages.next()).value as
        | {
            segment: { blobItems: Array<{ name: string; properties: { contentLength?: number; contentType?: string; etag?: string; lastModified?: Date } }> };
            continuationToken?: string;
          }
        | undefined;
      if (!page) break;
      for (const item of page.segment.blobItems) {
        const key = item.name.slice(this.location.length);
        items.push({
          key,
          size: item.properties.contentLength ?? 0,
          // Listings carry the stored type (which the serving rules decided at save).
          contentType: item.properties.contentType || this.servingRule.typeFromKey(key),
          etag: unquote(item.properties.etag),
          lastModified: item.properties.lastModified,
        });
      }
      token = page.continuationToken || undefined;
    } while (token && items.length < options.limit);
    return { items, ...(token ? { cursor: token } : {}) };
  }

  protected override async copyObject(from: string, to: string, options: CopyOptions): Promise<ObjectInfo> {
    const source = this.blockBlob(from);
    // Copy Blob inside the account, authorised for the source by a short SAS; properties and
    // metadata come along. Azurite and Azure finish copies inside one account synchronously.
    const sourceUrl = await source.generateSasUrl({ permissions: BlobSASPermissions.parse('r'), expiresOn: new Date(Date.now() + 10 * 60_000) });
    const poller = await this.blockBlob(to).beginCopyFromURL(sourceUrl, { conditions: options.ifExists === 'fail' ? { ifNoneMatch: '*' } : undefined });
    await poller.pollUntilDone();
    const info = await this.statObject(to);
    if (!info) throw new MediaStorageError('UNAVAILABLE', `The copy to "${to}" is not visible yet`, { key: to });
    return info;
  }

  protected async objectUrl(key: string, options: UrlOptions): Promise<string> {
    const download = downloadFilename(options.download, key);
    const blob = this.blockBlob(key);
    if (this.visibility === 'public' && options.expiresIn === undefined && download === undefined) {
      return this.options.publicBaseUrl ? `${this.options.publicBaseUrl.replace(/\/+$/, '')}/${encodeKeyPath(this.fullKey(key))}` : blob.url;
    }
    if (!this.capabilities.signedUrls) throw configError('signed URLs need the account key in the connection string (a StorageSharedKeyCredential)');
    const expiresIn = Math.ceil(options.expiresIn ?? this.defaultExpiresIn);
    return blob.generateSasUrl({
      permissions: BlobSASPermissions.parse('r'),
      expiresOn: new Date(Date.now() + expiresIn * 1000),
      ...(download !== undefined ? { contentDisposition: contentDisposition('attachment', download) } : {}),
    });
  }

  /**
   * A direct upload: a Put Blob to a service SAS URL bound to this blob (create and write, until
   * the expiry), which Azure enforces. Azure cannot bind the headers of the upload: the
   * Content-Type and Content-Disposition are only what the browser is asked to send
   * (`enforced.contentType` and `enforced.maxSize` are false).
   */
  protected override async presignObjectUpload(key: string, plan: PresignPlan): Promise<DirectUpload> {
    const expiresAt = new Date(Date.now() + plan.expiresIn * 1000);
    const url = await this.blockBlob(key).generateSasUrl({ permissions: BlobSASPermissions.parse('cw'), expiresOn: expiresAt });
    const headers: Record<string, string> = { 'x-ms-blob-type': 'BlockBlob', 'Content-Type': plan.contentType, 'x-ms-blob-content-type': plan.contentType };
    if (plan.contentDisposition) headers['x-ms-blob-content-disposition'] = plan.contentDisposition;
    if (this.options.cacheControl) headers['x-ms-blob-cache-control'] = this.options.cacheControl;
    return {
      method: 'PUT',
      url,
      headers,
      key,
      contentType: plan.contentType,
      expiresAt,
      enforced: { key: true, contentType: false, maxSize: false, expiry: true },
    };
  }

  protected override metadataRules(): MetadataRules {
    return { maxTotalBytes: MAX_METADATA_BYTES, storedValue: encodeHeaderValue };
  }

  protected override mapError(err: unknown): ErrorMapping | undefined {
    return mapAzureError(err, { container: this.container, account: this.serviceClient.accountName });
  }

  protected override secrets(): readonly (string | undefined)[] {
    return [this.accountKey, this.options.connectionString];
  }

  // ----------------------------------------------------------------- helpers

  /** The blob name; the location prefix counts towards Azure's 1,024 characters. */
  private fullKey(key: string): string {
    const name = this.location + key;
    if (name.length > MAX_NAME_CHARS)
      throw new MediaStorageError('INVALID_KEY', `The key with the location "${this.location}" is longer than Azure's ${MAX_NAME_CHARS} characters`, { key });
    return name;
  }

  private blockBlob(key: string): BlockBlobClient {
    return this.containerClient.getBlockBlobClient(this.fullKey(key));
  }

  private httpHeaders(contentType: string, cacheControl: string | undefined, disposition: string | undefined): BlobHTTPHeaders {
    const cache = cacheControl ?? this.options.cacheControl;
    // A container serves blobs with their stored type and disposition, and cannot send nosniff or
    // a CSP: everything but the inline list is stored as an attachment (see the serving rules).
    return { blobContentType: contentType, ...(cache ? { blobCacheControl: cache } : {}), ...(disposition ? { blobContentDisposition: disposition } : {}) };
  }

  private storedMetadata(metadata: Record<string, string> | undefined): Record<string, string> | undefined {
    if (!metadata || Object.keys(metadata).length === 0) return undefined;
    // Values HTTP headers cannot carry travel as RFC 2047 words, as on S3.
    return Object.fromEntries(Object.entries(metadata).map(([k, v]) => [encodeMetadataName(k), encodeHeaderValue(v)]));
  }

  private givenMetadata(stored: Record<string, string>): Record<string, string> {
    return Object.fromEntries(Object.entries(stored).map(([k, v]) => [decodeMetadataName(k), decodeHeaderValue(v)]));
  }

  private infoAfterWrite(
    key: string,
    body: PreparedBody,
    size: number,
    etag: string | undefined,
    lastModified: Date | undefined,
    headers: BlobHTTPHeaders,
    metadata: Record<string, string> | undefined,
  ): ObjectInfo {
    return {
      key,
      size,
      contentType: body.contentType,
      etag: unquote(etag),
      lastModified: lastModified ?? new Date(),
      ...(headers.blobCacheControl ? { cacheControl: headers.blobCacheControl } : {}),
      ...(metadata && Object.keys(metadata).length > 0 ? { metadata: { ...metadata } } : {}),
    };
  }
}

function unquote(etag: string | undefined): string | undefined {
  return etag === undefined ? undefined : etag.replace(/^W\//, '').replaceAll('"', '') || undefined;
}
