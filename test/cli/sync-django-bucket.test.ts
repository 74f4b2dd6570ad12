/**
 * A bucket a Django app filled (django-storages and boto3, through test/support/
 * django_fill_bucket.py: NFD and NFC names, metadata, a 30 MB multipart upload) plus what the S3
 * console adds (folder markers, odd names), moved to the local disk with syncStorages and back to
 * a fresh bucket with the `media-storage sync` CLI: every file byte-exact, the rest reported, and
 * a second run of each copies nothing. Needs an S3 server that checks signatures
 * (MEDIA_STORAGE_TEST_S3_ENDPOINT: Ceph RGW in .ci/run) and Debian's python3 with django and
 * django-storages; skipped visibly otherwise, and failed instead when
 * MEDIA_STORAGE_REQUIRE_DJANGO=1 says they must be there.
 */
import { execFile, execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, GetObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { syncStorages } from '../../src/cli/sync.js';
import { LocalStorage } from '../../src/local/index.js';
import { S3Storage } from '../../src/s3/index.js';
import { rawClient } from '../support/s3-target.js';
import { tempDir } from '../support/tmp.js';

const run = promisify(execFile);
const env = process.env;
const PYTHON = '/usr/bin/python3';
const endpoint = env.MEDIA_STORAGE_TEST_S3_ENDPOINT;
const region = env.MEDIA_STORAGE_TEST_S3_REGION ?? 'us-east-1';
const credentials = { accessKeyId: env.MEDIA_STORAGE_TEST_S3_ACCESS_KEY ?? '', secretAccessKey: env.MEDIA_STORAGE_TEST_S3_SECRET_KEY ?? '' };

function djangoMissing(): string | undefined {
  if (!endpoint) return 'no S3 server given (MEDIA_STORAGE_TEST_S3_ENDPOINT)';
  try {
    execFileSync(PYTHON, ['-c', 'import django, storages, boto3'], { stdio: 'ignore' });
    return undefined;
  } catch {
    return `${PYTHON} has no django, django-storages and boto3 (apt-get install python3-django python3-django-storages)`;
  }
}
const missing = djangoMissing();
if (missing && env.MEDIA_STORAGE_REQUIRE_DJANGO === '1') throw new Error(`MEDIA_STORAGE_REQUIRE_DJANGO=1 but ${missing}`);

interface Filled {
  files: Record<string, { sha256: string; size: number; etag?: string }>;
  markers: string[];
  odd: string[];
  versions: Record<string, string>;
}

const sha = (data: Buffer): string => createHash('sha256').update(data).digest('hex');

/** A listing that gets every name, whatever characters it holds. */
async function namesIn(client: S3Client, bucket: string): Promise<string[]> {
  const names: string[] = [];
  let token: string | undefined;
  do {
    const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token, EncodingType: 'url' }));
    for (const o of page.Contents ?? []) names.push(decodeURIComponent(o.Key!.replace(/\+/g, ' ')));
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token);
  return names;
}

describe.skipIf(missing !== undefined)(`a Django-filled bucket synced to the local disk and back${missing ? ` [skipped: ${missing}]` : ''}`, () => {
  const stamp = `${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
  const buckets = { django: `ms-django-${stamp}`, back: `ms-django-back-${stamp}`, copy: `ms-django-copy-${stamp}` };
  let client: S3Client;
  let filled: Filled;
  let local: { dir: string; remove: () => Promise<void> };
  const storage = (bucket: string): S3Storage => new S3Storage({ bucket, endpoint, region, credentials });

  beforeAll(async () => {
    client = rawClient(endpoint!, region, credentials);
    for (const bucket of Object.values(buckets)) await client.send(new CreateBucketCommand({ Bucket: bucket }));
    local = await tempDir('django-bucket');
    const { stdout } = await run(PYTHON, [path.resolve('test/support/django_fill_bucket.py')], {
      env: {
        ...env,
        S3_ENDPOINT: endpoint,
        S3_ACCESS_KEY: credentials.accessKeyId,
        S3_SECRET_KEY: credentials.secretAccessKey,
        S3_REGION: region,
        S3_BUCKET: buckets.django,
      },
      maxBuffer: 16 * 1024 * 1024,
    });
    filled = JSON.parse(stdout) as Filled;
  }, 300_000);

  afterAll(async () => {
    if (client) {
      for (const bucket of Object.values(buckets)) {
        const names = await namesIn(client, bucket).catch(() => []);
        for (const Key of names) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key })).catch(() => undefined);
        await client.send(new DeleteBucketCommand({ Bucket: bucket })).catch(() => undefined);
      }
      client.destroy();
    }
    await local?.remove();
  }, 300_000);

  it('was filled by real django-storages, with a multipart upload and decomposed names', () => {
    expect(filled.versions).toMatchObject({ django: expect.stringMatching(/^3\.2\./), storages: expect.stringMatching(/^1\.13\./) });
    expect(filled.files['videos/welcome.mp4']?.etag).toMatch(/-\d+$/);
    expect(Object.keys(filled.files)).toEqual(expect.arrayContaining(['profile_images/Jose\u0301.jpg', 'profile_images/Jos\u00e9.jpg']));
  });

  it('media-storage reads every file Django wrote by its own name, with its metadata decoded', async () => {
    const s = storage(buckets.django);
    const listed: string[] = [];
    const skipped: string[] = [];
    for await (const info of s.listAll('', { onSkipped: (o) => skipped.push(o.name) })) listed.push(info.key);
    expect(listed.sort()).toEqual(Object.keys(filled.files).sort());
    expect(skipped.sort()).toEqual([...filled.markers, ...filled.odd].sort());
    for (const key of ['profile_images/Jose\u0301.jpg', 'profile_images/Jos\u00e9.jpg']) {
      expect(sha(await s.readBuffer(key))).toBe(filled.files[key]!.sha256);
      const res = await fetch(await s.url(key));
      expect(sha(Buffer.from(await res.arrayBuffer()))).toBe(filled.files[key]!.sha256);
    }
    const django = await s.stat('profile_images/abc.jpg');
    expect(django.cacheControl).toBe('max-age=86400');
    expect(django.metadata).toEqual({ 'uploaded-by': 'crm-django' });
    expect((await s.stat('documents/console.txt')).metadata).toEqual({ note: 'Jos\u00e9 \u65e5\u672c' });
  });

  it('syncStorages copies every file to the local disk byte-exact, reports the rest, and then copies nothing', async () => {
    const s = storage(buckets.django);
    const disk = new LocalStorage({ root: local.dir, warnOnEphemeralDisk: false });
    const copied: string[] = [];
    const first = await syncStorages(s, disk, { onEvent: (e) => e.type === 'copied' && copied.push(e.key) });
    expect(first.failures).toEqual([]);
    expect(copied.sort()).toEqual(Object.keys(filled.files).sort());
    expect(first.folderMarkers).toBe(filled.markers.length);
    expect(first.notCopied.map((o) => [o.name, o.reason]).sort()).toEqual(filled.odd.map((n) => [n, 'invalid-key']).sort());
    for (const [key, file] of Object.entries(filled.files)) expect(sha(await readFile(path.join(local.dir, key))), key).toBe(file.sha256);
    const second = await syncStorages(s, disk);
    expect(second).toMatchObject({ copied: 0, failed: 0, skipped: Object.keys(filled.files).length });
  }, 300_000);

  it('the media-storage sync CLI copies the local disk to a fresh bucket byte-exact, and a second run copies nothing', async () => {
    const to = `s3://${encodeURIComponent(credentials.accessKeyId)}:${encodeURIComponent(credentials.secretAccessKey)}@${buckets.back}?endpoint=${encodeURIComponent(endpoint!)}&region=${region}`;
    const cli = (): Promise<{ stdout: string }> =>
      run(process.execPath, [path.resolve('dist/cli.js'), 'sync', '--from', `file://${local.dir}`, '--to', to, '--quiet'], {
        env: { ...env, NODE_ENV: 'test' },
      });
    const count = Object.keys(filled.files).length;
    const first = await cli();
    expect(first.stdout).toContain(`${count} objects: ${count} copied`);
    expect(first.stdout).toContain('0 failed');
    expect((await namesIn(client, buckets.back)).sort()).toEqual(Object.keys(filled.files).sort());
    for (const [key, file] of Object.entries(filled.files)) {
      const got = await client.send(new GetObjectCommand({ Bucket: buckets.back, Key: key }));
      expect(sha(Buffer.from(await got.Body!.transformToByteArray())), key).toBe(file.sha256);
    }
    const second = await cli();
    expect(second.stdout).toContain(`${count} objects: 0 copied`);
    expect(second.stdout).toContain(`${count} already there`);
  }, 300_000);

  it('bucket to bucket, the stored content types, Cache-Control and metadata come along', async () => {
    const from = storage(buckets.django);
    const to = storage(buckets.copy);
    const first = await syncStorages(from, to);
    expect(first).toMatchObject({ failed: 0, copied: Object.keys(filled.files).length, warnings: [] });
    for (const key of ['profile_images/abc.jpg', 'documents/console.txt', 'videos/welcome.mp4']) {
      const [a, b] = [await from.stat(key), await to.stat(key)];
      expect({ type: b.contentType, cache: b.cacheControl, meta: b.metadata }, key).toEqual({ type: a.contentType, cache: a.cacheControl, meta: a.metadata });
    }
    expect(await syncStorages(from, to)).toMatchObject({ copied: 0, failed: 0 });
  }, 300_000);
});
