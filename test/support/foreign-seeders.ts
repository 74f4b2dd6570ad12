/**
 * `seedForeign` for each built-in backend (see SeedForeign in src/testing): objects written the
 * way other software writes them, with the backend's native client and never through the storage
 * under test, so the contract suite can check what the storage makes of them.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, PutObjectCommand, UploadPartCommand, type S3Client } from '@aws-sdk/client-s3';
import { createHash } from 'node:crypto';
import { createRequire } from 'node:module';
import type { ContainerClient } from '@azure/storage-blob';
import { encodeMetadataName } from '../../src/azure/index.js';
import type { MemoryStorage } from '../../src/memory/index.js';
import type { SeedForeign } from '../../src/testing/index.js';

const PART_BYTES = 5 * 1024 * 1024;

/** The backblaze-b2 calls the seeder makes (the package ships no types). */
interface B2Client {
  authorize(args: object): Promise<unknown>;
  getBucket(args: { bucketName: string }): Promise<{ data: { buckets: Array<{ bucketId: string }> } }>;
  getUploadUrl(args: { bucketId: string }): Promise<{ data: { uploadUrl: string; authorizationToken: string } }>;
  uploadFile(args: object): Promise<unknown>;
  startLargeFile(args: object): Promise<{ data: { fileId: string } }>;
  getUploadPartUrl(args: { fileId: string }): Promise<{ data: { uploadUrl: string; authorizationToken: string } }>;
  uploadPart(args: object): Promise<unknown>;
  finishLargeFile(args: { fileId: string; partSha1Array: string[] }): Promise<unknown>;
}
const B2 = createRequire(import.meta.url)('backblaze-b2') as new (options: { applicationKeyId: string; applicationKey: string }) => B2Client;

/** What the S3 console and S3 itself do with a value outside printable ASCII: one RFC 2047 word. */
function consoleEncoded(value: string): string {
  return /^[\x20-\x7e]*$/.test(value) ? value : `=?UTF-8?B?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}

/** The memory store's own map, through its documented back door. */
export function memorySeeder(storage: MemoryStorage): SeedForeign {
  return async (name, body, options = {}) => storage.putForeignObject(name, body, options);
}

/**
 * node:fs under the root. A file system has no "." or empty segment (`a//b` is `a/b`) and no
 * object called `x/` (an empty folder is no file): those names answer false.
 */
export function localSeeder(root: string): SeedForeign {
  return async (name, body) => {
    const segments = name.split('/');
    if (name.endsWith('/')) {
      await mkdir(path.join(root, ...segments), { recursive: true });
      return false;
    }
    if (segments.some((s) => s === '' || s === '.' || s === '..')) return false;
    await mkdir(path.join(root, ...segments.slice(0, -1)), { recursive: true });
    await writeFile(path.join(root, ...segments), body);
  };
}

/**
 * A raw S3Client: PutObject, or CreateMultipartUpload and 5 MiB parts above that, as the CLIs do.
 * `acl` is what the other software sends (a Django app with AWS_DEFAULT_ACL = "public-read" for
 * a public bucket); `canHold` says which full keys the server under test can store as given.
 */
export function s3Seeder(
  client: S3Client,
  bucket: string,
  location: string,
  options: { acl?: 'public-read'; canHold?: (key: string) => boolean } = {},
): SeedForeign {
  const { acl, canHold } = options;
  return async (name, body, options = {}) => {
    const Key = location + name;
    if (canHold && !canHold(Key)) return false;
    const Metadata = options.metadata ? Object.fromEntries(Object.entries(options.metadata).map(([k, v]) => [k, consoleEncoded(v)])) : undefined;
    const common = { Bucket: bucket, Key, ContentType: options.contentType, Metadata, ACL: acl };
    if (body.length <= PART_BYTES) {
      await client.send(new PutObjectCommand({ ...common, Body: body }));
      return;
    }
    const { UploadId } = await client.send(new CreateMultipartUploadCommand(common));
    const parts: Array<{ PartNumber: number; ETag?: string }> = [];
    for (let i = 0; i * PART_BYTES < body.length; i++) {
      const part = await client.send(
        new UploadPartCommand({ Bucket: bucket, Key, UploadId, PartNumber: i + 1, Body: body.subarray(i * PART_BYTES, (i + 1) * PART_BYTES) }),
      );
      parts.push({ PartNumber: i + 1, ETag: part.ETag });
    }
    await client.send(new CompleteMultipartUploadCommand({ Bucket: bucket, Key, UploadId, MultipartUpload: { Parts: parts } }));
  };
}

/**
 * The backblaze-b2 SDK against a (fake) B2: b2_upload_file, or the large-file calls with 5 MB
 * parts above that. B2 itself refuses names with "//", a trailing "/" or control characters.
 */
export function b2Seeder(account: { applicationKeyId: string; applicationKey: string; authorizeUrl: string }, bucketName: string, location = ''): SeedForeign {
  let ready: Promise<{ b2: B2Client; bucketId: string }> | undefined;
  const connect = async (): Promise<{ b2: B2Client; bucketId: string }> => {
    const b2 = new B2({ applicationKeyId: account.applicationKeyId, applicationKey: account.applicationKey });
    await b2.authorize({ axiosOverride: { url: account.authorizeUrl } });
    const found = await b2.getBucket({ bucketName });
    return { b2, bucketId: found.data.buckets[0]!.bucketId };
  };
  const sha1 = (data: Buffer): string => createHash('sha1').update(data).digest('hex');
  return async (name, body, options = {}) => {
    ready ??= connect();
    const { b2, bucketId } = await ready;
    const fileName = location + name;
    const mime = options.contentType ?? 'b2/x-auto';
    if (body.length <= PART_BYTES) {
      const target = (await b2.getUploadUrl({ bucketId })).data;
      await b2.uploadFile({ uploadUrl: target.uploadUrl, uploadAuthToken: target.authorizationToken, fileName, data: body, mime, info: options.metadata });
      return;
    }
    const started = (await b2.startLargeFile({ bucketId, fileName, contentType: mime, axiosOverride: { data: { fileInfo: options.metadata ?? {} } } })).data;
    const target = (await b2.getUploadPartUrl({ fileId: started.fileId })).data;
    const hashes: string[] = [];
    for (let i = 0; i * PART_BYTES < body.length; i++) {
      const part = body.subarray(i * PART_BYTES, (i + 1) * PART_BYTES);
      hashes.push(sha1(part));
      await b2.uploadPart({ partNumber: i + 1, uploadUrl: target.uploadUrl, uploadAuthToken: target.authorizationToken, data: part, hash: hashes[i] });
    }
    await b2.finishLargeFile({ fileId: started.fileId, partSha1Array: hashes });
  };
}

/** The parts of the cloudinary SDK the seeder uses. */
interface CloudinaryUploader {
  uploader: {
    upload_stream(options: Record<string, unknown>, callback: (error: unknown, result?: unknown) => void): NodeJS.WritableStream;
    upload_chunked_stream(options: Record<string, unknown>, callback: (error: unknown, result?: unknown) => void): NodeJS.WritableStream;
    destroy(publicId: string, options: Record<string, unknown>): Promise<unknown>;
  };
}

/**
 * The cloudinary SDK's upload_stream (upload_chunked_stream above 5 MB) against a (fake)
 * Cloudinary: raw assets whose public ID is the folder and the name, as another app's uploads of
 * documents are. Cloudinary has folders, not folder objects: names ending in "/" answer false.
 */
export function cloudinarySeeder(sdk: CloudinaryUploader, call: Record<string, unknown>, folder: string): SeedForeign {
  return async (name, body) => {
    if (name.endsWith('/')) return false;
    const publicId = folder + name;
    const params = { ...call, resource_type: 'raw', public_id: publicId, overwrite: true, ...(body.length > PART_BYTES ? { chunk_size: PART_BYTES } : {}) };
    const result = await new Promise<{ public_id?: string }>((resolve, reject) => {
      const callback = (error: unknown, answer?: unknown): void =>
        error ? reject(new Error(`cloudinary upload of ${JSON.stringify(name)}: ${JSON.stringify(error)}`)) : resolve((answer ?? {}) as { public_id?: string });
      const sink = body.length > PART_BYTES ? sdk.uploader.upload_chunked_stream(params, callback) : sdk.uploader.upload_stream(params, callback);
      Readable.from([body]).pipe(sink as NodeJS.WritableStream);
    });
    // Cloudinary rewrites some characters of a public ID: then the name was not stored as given.
    if (result.public_id !== undefined && result.public_id !== publicId) {
      await sdk.uploader.destroy(result.public_id, { ...call, resource_type: 'raw' });
      return false;
    }
  };
}

/**
 * The raw @azure/storage-blob SDK, as another app or Azure Storage Explorer writes: Put Blob, or
 * the SDK's own uploadData (parallel blocks) above 5 MB. Metadata names Azure can hold (C#
 * identifiers) are written as they are, others the one way media-storage reads them (no other
 * tool can write `uploaded-by` at all); values outside printable ASCII as RFC 2047 words. A name
 * Azure refuses (a 400 from the service) was never an object there: the seeder says so.
 */
export function azureSeeder(container: ContainerClient, location: string): SeedForeign {
  return async (name, body, options = {}) => {
    // Two names no Azure client stores as given: "." and ".." segments, which the SDK's URL
    // resolves away (./dot.jpg becomes dot.jpg), and characters XML 1.0 cannot carry (U+0001),
    // which Azurite stores but then cannot list (its listing answers 500; Azure percent-encodes
    // such names in listings, with Encoded="true").

    if (name.split('/').some((s) => s === '.' || s === '..') || /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/.test(name)) return false;
    const blob = container.getBlockBlobClient(location + name);
    const metadata = options.metadata
      ? Object.fromEntries(Object.entries(options.metadata).map(([k, v]) => [encodeMetadataName(k), consoleEncoded(v)]))
      : undefined;
    const common = { blobHTTPHeaders: options.contentType ? { blobContentType: options.contentType } : undefined, metadata };
    try {
      if (body.length <= PART_BYTES) await blob.upload(body, body.length, common);
      else await blob.uploadData(body, { ...common, blockSize: PART_BYTES, concurrency: 4 });
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode === 400) return false;
      throw err;
    }
    return true;
  };
}
