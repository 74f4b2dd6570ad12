/**
 * The S3 server the S3 tests run against. With MEDIA_STORAGE_TEST_S3_ENDPOINT set, that server
 * (Ceph RGW, MinIO, AWS, R2...); otherwise an s3rver started here in a child process on an
 * ephemeral port with a temporary folder, so `npm test` needs no Docker and no root.
 * The variables are documented in docs/s3.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  AbortMultipartUploadCommand,
  CompleteMultipartUploadCommand,
  CreateBucketCommand,
  CreateMultipartUploadCommand,
  DeleteObjectCommand,
  HeadBucketCommand,
  ListObjectsV2Command,
  PutObjectCommand,
  S3Client,
  UploadPartCommand,
} from '@aws-sdk/client-s3';
import { S3Storage, type S3StorageOptions } from '../../src/s3/index.js';
import { tempDir } from './tmp.js';

const env = process.env;
const HERE = path.dirname(fileURLToPath(import.meta.url));

/** Whether the tests run against a server given by environment variables (else s3rver). */
export const externalTarget = !!env.MEDIA_STORAGE_TEST_S3_ENDPOINT;
/** A short name of the target for test titles. */
export const targetLabel = externalTarget ? `${env.MEDIA_STORAGE_TEST_S3_ENDPOINT}` : 's3rver';
/**
 * What s3rver does not implement, so the tests that need it skip (visibly) there: it checks
 * neither SigV4 signatures (nor so the signed payload hash) nor ACLs nor Content-MD5, and has no
 * ListMultipartUploads.
 */
export const serverChecksSignatures = externalTarget;
export const serverEnforcesAcls = externalTarget && env.MEDIA_STORAGE_TEST_S3_ACL !== 'false';
export const serverChecksPayloadHashes = externalTarget;
export const serverListsMultipartUploads = externalTarget;
/**
 * The longest object key the server stores, in bytes: S3's 1,024 unless
 * MEDIA_STORAGE_TEST_S3_MAX_KEY_BYTES says less (the Ceph cluster of .ci/run caps RADOS object
 * names at 460 bytes, so its RGW answers 500 to keys over about 416).
 */
export const serverMaxKeyBytes = Number(env.MEDIA_STORAGE_TEST_S3_MAX_KEY_BYTES ?? 1024);

export interface S3TestTarget {
  endpoint: string;
  region: string;
  bucket: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  /** A raw client for checks behind the storage's back. */
  client: S3Client;
  /** A unique key prefix for this test file, removed by stop(). */
  location: string;
  /** Whether the server enforces If-None-Match: * on PutObject and CompleteMultipartUpload (probed unless set by env). */
  conditionalWrites: boolean;
  /** An S3Storage on this target under this file's prefix. */
  storage(options?: Partial<S3StorageOptions>): S3Storage;
  stop(): Promise<void>;
}

/** A client configured as S3Storage configures its own (checksums only when required). */
export function rawClient(
  endpoint: string,
  region: string,
  credentials: { accessKeyId: string; secretAccessKey: string },
  extra: Partial<ConstructorParameters<typeof S3Client>[0]> = {},
): S3Client {
  return new S3Client({
    endpoint,
    region,
    credentials,
    forcePathStyle: env.MEDIA_STORAGE_TEST_S3_FORCE_PATH_STYLE !== 'false',
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    ...extra,
  });
}

async function startS3rver(dir: string, bucket: string): Promise<{ endpoint: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--openssl-legacy-provider', path.join(HERE, 's3rver-child.mjs'), dir, bucket], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const port = await new Promise<number>((resolve, reject) => {
    const lines = createInterface({ input: child.stdout! });
    const timer = setTimeout(() => reject(new Error('s3rver did not start within 30 s')), 30_000);
    lines.once('line', (line) => {
      clearTimeout(timer);
      resolve((JSON.parse(line) as { port: number }).port);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`s3rver exited with code ${code}`));
    });
  });
  return { endpoint: `http://127.0.0.1:${port}`, child };
}

async function ensureBucket(client: S3Client, bucket: string): Promise<void> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }));
  } catch {
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((err: { name?: string }) => {
      if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
    });
  }
}

/** Whether the server refuses a second write under a key with If-None-Match: *, for single and multipart writes. */
async function probeConditionalWrites(client: S3Client, bucket: string, prefix: string): Promise<boolean> {
  const key = `${prefix}probe-conditional`;
  const refused = async (write: () => Promise<unknown>): Promise<boolean> => {
    try {
      await write();
      return false;
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      return status === 412 || status === 409;
    }
  };
  try {
    await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'first' }));
    const single = await refused(() => client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: 'second', IfNoneMatch: '*' })));
    if (!single) return false;
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: bucket, Key: key }));
    try {
      const part = await client.send(new UploadPartCommand({ Bucket: bucket, Key: key, UploadId, PartNumber: 1, Body: 'third' }));
      return await refused(() =>
        client.send(
          new CompleteMultipartUploadCommand({
            Bucket: bucket,
            Key: key,
            UploadId,
            IfNoneMatch: '*',
            MultipartUpload: { Parts: [{ PartNumber: 1, ETag: part.ETag }] },
          }),
        ),
      );
    } finally {
      await client.send(new AbortMultipartUploadCommand({ Bucket: bucket, Key: key, UploadId })).catch(() => undefined);
    }
  } finally {
    await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key })).catch(() => undefined);
  }
}

/** Deletes every object under the prefix, a few at a time. */
async function removePrefix(client: S3Client, bucket: string, prefix: string): Promise<void> {
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ContinuationToken: token }));
    const keys = (page.Contents ?? []).map((o) => o.Key!).filter(Boolean);
    for (let i = 0; i < keys.length; i += 16) {
      await Promise.all(keys.slice(i, i + 16).map((Key) => client.send(new DeleteObjectCommand({ Bucket: bucket, Key }))));
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
}

export async function startS3Target(label: string): Promise<S3TestTarget> {
  const bucket = env.MEDIA_STORAGE_TEST_S3_BUCKET ?? 'media-storage-test';
  const region = env.MEDIA_STORAGE_TEST_S3_REGION ?? 'us-east-1';
  const credentials = {
    accessKeyId: env.MEDIA_STORAGE_TEST_S3_ACCESS_KEY ?? 'S3RVER',
    secretAccessKey: env.MEDIA_STORAGE_TEST_S3_SECRET_KEY ?? 'S3RVER',
  };
  let endpoint = env.MEDIA_STORAGE_TEST_S3_ENDPOINT;
  let stopServer = async (): Promise<void> => {};
  if (!endpoint) {
    const tmp = await tempDir('s3rver');
    const started = await startS3rver(tmp.dir, bucket);
    endpoint = started.endpoint;
    stopServer = async () => {
      if (started.child.exitCode === null) {
        const exited = new Promise((resolve) => started.child.once('exit', resolve));
        started.child.kill('SIGTERM');
        await exited;
      }
      await tmp.remove();
    };
  }
  const client = rawClient(endpoint, region, credentials);
  const location = `media-storage-tests/${label}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}/`;
  try {
    await ensureBucket(client, bucket);
    const conditionalEnv = env.MEDIA_STORAGE_TEST_S3_CONDITIONAL_WRITES;
    const conditionalWrites =
      conditionalEnv !== undefined ? conditionalEnv === '1' || conditionalEnv === 'true' : await probeConditionalWrites(client, bucket, location);
    const resolvedEndpoint = endpoint;
    return {
      endpoint,
      region,
      bucket,
      credentials,
      client,
      location,
      conditionalWrites,
      storage: (options = {}) =>
        new S3Storage({
          bucket,
          region,
          endpoint: resolvedEndpoint,
          forcePathStyle: env.MEDIA_STORAGE_TEST_S3_FORCE_PATH_STYLE !== 'false',
          credentials,
          location,
          conditionalWrites,
          ...(env.MEDIA_STORAGE_TEST_S3_ACL === 'false' ? { acl: false } : {}),
          ...options,
        }),
      stop: async () => {
        if (externalTarget) await removePrefix(client, bucket, location).catch(() => undefined);
        client.destroy();
        await stopServer();
      },
    };
  } catch (err) {
    client.destroy();
    await stopServer();
    throw err;
  }
}
