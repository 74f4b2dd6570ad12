/**
 * media-storage against real django-storages (S3Boto3Storage, Debian's python3-django-storages
 * with boto3) on a real S3 server (Ceph RGW in .ci/run): objects either one writes, the other
 * reads; for the same AWS_* variables both give the same URLs, and the signed ones both fetch.
 * The variables go unchanged to configFromEnv and, through test/support/django_storage.py, to a
 * Django settings module.
 *
 * Needs MEDIA_STORAGE_TEST_S3_* (a real server: s3rver checks neither signatures nor ACLs) and a
 * python with django, django-storages and boto3 (MEDIA_STORAGE_TEST_PYTHON, default
 * /usr/bin/python3); skips visibly, with the reason, without them. MEDIA_STORAGE_REQUIRE_DJANGO=1
 * (set by .ci/run) makes their absence a failure.
 */
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, DeleteBucketCommand, DeleteObjectCommand, ListObjectsV2Command, type S3Client } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { configFromEnv, createMediaStorageFromEnv } from '../../src/config/index.js';
import type { MediaStorage } from '../../src/core/types.js';
import { makePng } from '../support/png.js';
import { externalTarget, rawClient } from '../support/s3-target.js';

const env = process.env;
const PYTHON = env.MEDIA_STORAGE_TEST_PYTHON ?? '/usr/bin/python3';
const HELPER = path.join(path.dirname(fileURLToPath(import.meta.url)), '../support/django_storage.py');
const requireDjango = env.MEDIA_STORAGE_REQUIRE_DJANGO === '1';

function pythonMissing(): string | undefined {
  const probe = spawnSync(PYTHON, ['-c', 'import django, storages, boto3'], { encoding: 'utf8' });
  if (probe.error) return `${PYTHON} cannot be run (${probe.error.message})`;
  if (probe.status !== 0)
    return `${PYTHON} lacks django, django-storages or boto3 (apt-get install python3-django python3-django-storages): ${probe.stderr.trim().split('\n').pop()}`;
  return undefined;
}

const skipReason = !externalTarget ? 'MEDIA_STORAGE_TEST_S3_ENDPOINT is not set: it needs a real S3 server (Ceph RGW in .ci/run)' : pythonMissing();

type Env = Record<string, string>;
type Op = { op: 'save'; name: string; data: string } | { op: 'url' | 'exists' | 'stat' | 'read' | 'delete'; name: string; expire?: number };
interface DjangoResult {
  name?: string;
  url?: string;
  exists?: boolean;
  size?: number;
  content_type?: string;
  data?: string;
  error?: string;
}

/** Runs the ops with real django-storages configured from `vars`; one python process per call. */
async function django(vars: Env, ops: Op[]): Promise<DjangoResult[]> {
  const child = spawn(PYTHON, [HELPER], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: env.PATH ?? '/usr/bin:/bin', LANG: 'C.UTF-8' } });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  child.stdin.end(JSON.stringify({ env: vars, ops }));
  const code = await new Promise<number | null>((resolve) => child.once('close', resolve));
  if (code !== 0) throw new Error(`django_storage.py exited with ${code}: ${err}`);
  const answer = JSON.parse(out) as { error?: string; results: DjangoResult[] };
  if (answer.error) throw new Error(`django-storages could not start: ${answer.error}`);
  for (const [i, r] of answer.results.entries()) if (r.error) throw new Error(`django-storages ${ops[i]!.op} "${ops[i]!.name}": ${r.error}`);
  return answer.results;
}

const b64 = (b: Buffer): string => b.toString('base64');

/** The parts of a SigV4 presigned URL that say what it is for (the rest is the signature and its time). */
function signedTarget(url: string): { target: string; expires: string | null; region: string | undefined; signedHeaders: string | null; params: string[] } {
  const [target, query = ''] = url.split('?', 2) as [string, string?];
  const q = new URLSearchParams(query);
  return {
    target,
    expires: q.get('X-Amz-Expires'),
    region: q.get('X-Amz-Credential')?.split('/')[2],
    signedHeaders: q.get('X-Amz-SignedHeaders'),
    params: [...q.keys()].sort(),
  };
}

/** Query parameters the JavaScript SDK's presigner adds and boto3's does not (both part of the signature, harmless to S3). */
const SDK_ONLY_PARAMS = ['X-Amz-Content-Sha256', 'x-id'];

// Names a Django app really has: spaces, the characters boto3 and Django encode differently
// ('()!*), reserved URL characters, and non-ASCII (NFC; decomposed names are another test's).
const NAMES = ['plain.png', 'with space.png', "quote'()!*~.png", 'Jos\u00e9 \u00d1and\u00fa \u65e5\u672c.png', '50% off+plus&amp=;#hash?.png'];

async function fetchBytes(url: string): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(url);
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

if (skipReason && requireDjango) {
  describe('django-storages interop', () => {
    it('runs (MEDIA_STORAGE_REQUIRE_DJANGO=1)', () => {
      throw new Error(`MEDIA_STORAGE_REQUIRE_DJANGO=1 but ${skipReason}`);
    });
  });
}

if (skipReason && !requireDjango) {
  // Skipped tests' names are not printed by the default reporter: say why, once, where it shows.
  console.warn(`[media-storage] django-storages interop tests SKIPPED: ${skipReason}`);
}

describe.skipIf(!!skipReason)(
  `django-storages interop against ${env.MEDIA_STORAGE_TEST_S3_ENDPOINT ?? 'a real S3 server'}${skipReason ? ` [skipped: ${skipReason}]` : ''}`,
  () => {
    const endpoint = env.MEDIA_STORAGE_TEST_S3_ENDPOINT!;
    const region = env.MEDIA_STORAGE_TEST_S3_REGION ?? 'us-east-1';
    const accessKeyId = env.MEDIA_STORAGE_TEST_S3_ACCESS_KEY ?? '';
    const secretAccessKey = env.MEDIA_STORAGE_TEST_S3_SECRET_KEY ?? '';
    const bucket = `media-storage-django-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    let client: S3Client;
    /** The variables of the Django app under test: what both sides are configured from. */
    let base: Env;
    const png = (i: number): Buffer => makePng(4 + i, 3, [(40 * i) % 256, 90, 200]);
    const storageFor = (vars: Env): Promise<MediaStorage> => createMediaStorageFromEnv(vars);

    beforeAll(async () => {
      client = rawClient(endpoint, region, { accessKeyId, secretAccessKey });
      await client.send(new CreateBucketCommand({ Bucket: bucket }));
      base = {
        AWS_STORAGE_BUCKET_NAME: bucket,
        AWS_S3_ENDPOINT_URL: endpoint,
        AWS_S3_REGION_NAME: region,
        AWS_ACCESS_KEY_ID: accessKeyId,
        AWS_SECRET_ACCESS_KEY: secretAccessKey,
        // boto3 1.26 presigns with SigV2 where it can unless told; media-storage always uses SigV4.
        AWS_S3_SIGNATURE_VERSION: 's3v4',
        AWS_LOCATION: 'media',
      };
    }, 60_000);

    afterAll(async () => {
      if (!client) return;
      let token: string | undefined;
      do {
        const page = await client.send(new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }));
        for (const o of page.Contents ?? []) await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: o.Key! }));
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
      await client.send(new DeleteBucketCommand({ Bucket: bucket }));
      client.destroy();
    }, 60_000);

    it('what Django saves, media-storage finds, reads and links to; the signed URLs match and both fetch', async () => {
      const names = NAMES.map((n) => `profile_images/${n}`);
      const saved = await django(base, [
        ...names.map((name, i) => ({ op: 'save' as const, name, data: b64(png(i)) })),
        ...names.map((name) => ({ op: 'url' as const, name })),
      ]);
      expect(saved.slice(0, names.length).map((r) => r.name)).toEqual(names);
      const djangoUrls = saved.slice(names.length).map((r) => r.url!);
      const storage = await storageFor(base);
      for (const [i, name] of names.entries()) {
        expect(await storage.exists(name)).toBe(true);
        const info = await storage.stat(name);
        expect(info.size).toBe(png(i).length);
        expect(info.contentType).toBe('image/png');
        expect((await storage.readBuffer(name)).equals(png(i))).toBe(true);
        const ours = signedTarget(await storage.url(name));
        const theirs = signedTarget(djangoUrls[i]!);
        expect({ ...ours, params: undefined }).toEqual({ ...theirs, params: undefined });
        expect(ours.target).toContain(`/${bucket}/media/profile_images/`);
        expect(ours.params).toEqual([...theirs.params, ...SDK_ONLY_PARAMS].sort());
        for (const url of [await storage.url(name), djangoUrls[i]!]) {
          const got = await fetchBytes(url);
          expect(got.status, url).toBe(200);
          expect(got.body.equals(png(i))).toBe(true);
        }
      }
    });

    it('what media-storage saves, Django finds, sizes, types and reads', async () => {
      const storage = await storageFor(base);
      const names = NAMES.map((n) => `from-node/${n}`);
      for (const [i, name] of names.entries()) await storage.save(name, png(i));
      const results = await django(
        base,
        names.flatMap((name) => [
          { op: 'exists' as const, name },
          { op: 'stat' as const, name },
          { op: 'read' as const, name },
        ]),
      );
      for (const [i] of names.entries()) {
        const [exists, stat, read] = results.slice(i * 3, i * 3 + 3) as [DjangoResult, DjangoResult, DjangoResult];
        expect(exists.exists).toBe(true);
        expect(stat).toEqual({ size: png(i).length, content_type: 'image/png' });
        expect(Buffer.from(read.data!, 'base64').equals(png(i))).toBe(true);
      }
    });

    it('AWS_QUERYSTRING_AUTH=False with AWS_DEFAULT_ACL=public-read: the same plain URLs, readable anonymously, for what either wrote', async () => {
      const vars = { ...base, AWS_QUERYSTRING_AUTH: 'False', AWS_DEFAULT_ACL: 'public-read' };
      const storage = await storageFor(vars);
      const fromDjango = NAMES.map((n) => `public/django-${n}`);
      const fromNode = NAMES.map((n) => `public/node-${n}`);
      for (const [i, name] of fromNode.entries()) await storage.save(name, png(i));
      const results = await django(vars, [
        ...fromDjango.map((name, i) => ({ op: 'save' as const, name, data: b64(png(i)) })),
        ...[...fromDjango, ...fromNode].map((name) => ({ op: 'url' as const, name })),
      ]);
      const djangoUrls = results.slice(fromDjango.length).map((r) => r.url!);
      for (const [j, name] of [...fromDjango, ...fromNode].entries()) {
        const url = await storage.url(name);
        expect(url).toBe(djangoUrls[j]);
        expect(url).not.toContain('?');
        const got = await fetchBytes(url);
        expect(got.status, url).toBe(200);
        expect(got.body.equals(png(j % NAMES.length))).toBe(true);
      }
    });

    it('AWS_DEFAULT_ACL=public-read with signed URLs (the default): media-storage writes the ACL, as Django does', async () => {
      const vars = { ...base, AWS_DEFAULT_ACL: 'public-read' };
      const storage = await storageFor(vars);
      await storage.save('acl/node.png', png(1));
      await storage.copy('acl/node.png', 'acl/node-copy.png');
      await (await storageFor(base)).save('acl/private.png', png(2));
      await django(vars, [{ op: 'save', name: 'acl/django.png', data: b64(png(3)) }]);
      const plain = await django(
        { ...vars, AWS_QUERYSTRING_AUTH: 'False' },
        ['acl/node.png', 'acl/node-copy.png', 'acl/django.png', 'acl/private.png'].map((name) => ({ op: 'url' as const, name })),
      );
      const statuses = await Promise.all(plain.map(async (r) => (await fetchBytes(r.url!)).status));
      // Without AWS_DEFAULT_ACL nothing is public: the server does enforce ACLs.
      expect(statuses).toEqual([200, 200, 200, 403]);
      expect(await storage.url('acl/node.png')).toMatch(/X-Amz-Signature=/);
    });

    it('AWS_S3_CUSTOM_DOMAIN: the same plain URLs on the domain with and without AWS_QUERYSTRING_AUTH, AWS_LOCATION and AWS_S3_URL_PROTOCOL', async () => {
      const names = NAMES.map((n) => `profile_images/${n}`);
      const variants: Env[] = [
        { AWS_S3_CUSTOM_DOMAIN: 'cdn.example.com' },
        { AWS_S3_CUSTOM_DOMAIN: 'cdn.example.com', AWS_QUERYSTRING_AUTH: 'True' },
        { AWS_S3_CUSTOM_DOMAIN: 'cdn.example.com', AWS_QUERYSTRING_AUTH: 'False' },
        { AWS_S3_CUSTOM_DOMAIN: 'cdn.example.com/assets', AWS_LOCATION: '' },
        { AWS_S3_CUSTOM_DOMAIN: 'media.example.org', AWS_S3_URL_PROTOCOL: 'http:', AWS_LOCATION: 'uploads/media' },
      ];
      for (const variant of variants) {
        const vars = { ...base, ...variant };
        const storage = await storageFor(vars);
        const theirs = await django(
          vars,
          names.map((name) => ({ op: 'url' as const, name })),
        );
        for (const [i, name] of names.entries()) {
          const ours = await storage.url(name);
          expect(ours, JSON.stringify(variant)).toBe(theirs[i]!.url);
        }
      }
      const [first] = await django({ ...base, AWS_S3_CUSTOM_DOMAIN: 'cdn.example.com' }, [{ op: 'url', name: "profile_images/quote'()!*~.png" }]);
      expect(first!.url).toBe("https://cdn.example.com/media/profile_images/quote'()!*~.png");
    });

    it('a custom domain in front of the bucket serves what both wrote, at the URLs both give', async () => {
      // RGW itself stands in for the CDN: path-style, so the "domain" is host/bucket.
      const vars = {
        ...base,
        AWS_S3_CUSTOM_DOMAIN: `${new URL(endpoint).host}/${bucket}`,
        AWS_S3_URL_PROTOCOL: `${new URL(endpoint).protocol}`,
        AWS_DEFAULT_ACL: 'public-read',
      };
      const storage = await storageFor(vars);
      const names = NAMES.map((n) => `cdn/${n}`);
      await storage.save(names[0]!, png(0));
      await django(
        vars,
        names.slice(1).map((name, i) => ({ op: 'save' as const, name, data: b64(png(i + 1)) })),
      );
      const theirs = await django(
        vars,
        names.map((name) => ({ op: 'url' as const, name })),
      );
      for (const [i, name] of names.entries()) {
        const ours = await storage.url(name);
        expect(ours).toBe(theirs[i]!.url);
        const got = await fetchBytes(ours);
        expect(got.status, ours).toBe(200);
        expect(got.body.equals(png(i))).toBe(true);
      }
    });

    it('AWS_QUERYSTRING_EXPIRE sets the lifetime of both signed URLs', async () => {
      const vars = { ...base, AWS_QUERYSTRING_EXPIRE: '600' };
      const [theirs] = await django(vars, [{ op: 'url', name: 'expire.png' }]);
      const ours = await (await storageFor(vars)).url('expire.png');
      expect(signedTarget(ours).expires).toBe('600');
      expect(signedTarget(theirs!.url!).expires).toBe('600');
    });

    it('AWS_S3_FILE_OVERWRITE=False: a taken name gets a suffix as get_available_name gives it; the default overwrites, as Django does', async () => {
      const vars = { ...base, AWS_S3_FILE_OVERWRITE: 'False' };
      const saved = await django(vars, [
        { op: 'save', name: 'dup/avatar.png', data: b64(png(1)) },
        { op: 'save', name: 'dup/avatar.png', data: b64(png(2)) },
      ]);
      expect(saved[0]!.name).toBe('dup/avatar.png');
      expect(saved[1]!.name).toMatch(/^dup\/avatar_[a-zA-Z0-9]{7}\.png$/);
      const storage = await storageFor(vars);
      const info = await storage.save('dup/avatar.png', png(3));
      expect(info.key).toMatch(/^dup\/avatar_[a-z0-9]{7}\.png$/);
      expect((await storage.readBuffer('dup/avatar.png')).equals(png(1))).toBe(true);
      const [read] = await django(vars, [{ op: 'read', name: info.key }]);
      expect(Buffer.from(read!.data!, 'base64').equals(png(3))).toBe(true);

      const overwriting = await django(base, [
        { op: 'save', name: 'dup/over.png', data: b64(png(1)) },
        { op: 'save', name: 'dup/over.png', data: b64(png(2)) },
      ]);
      expect(overwriting.map((r) => r.name)).toEqual(['dup/over.png', 'dup/over.png']);
      expect((await (await storageFor(base)).save('dup/over.png', png(4))).key).toBe('dup/over.png');
    });

    it("django-storages' own credential names (AWS_S3_ACCESS_KEY_ID, AWS_S3_SECRET_ACCESS_KEY) win over AWS_ACCESS_KEY_ID, as in Django", async () => {
      await (await storageFor(base)).save('alias/a.png', png(1));
      const vars = {
        ...base,
        AWS_ACCESS_KEY_ID: 'not-the-key',
        AWS_SECRET_ACCESS_KEY: 'not-the-secret-0123456789',
        AWS_S3_ACCESS_KEY_ID: accessKeyId,
        AWS_S3_SECRET_ACCESS_KEY: secretAccessKey,
      };
      const [theirs] = await django(vars, [{ op: 'read', name: 'alias/a.png' }]);
      expect(Buffer.from(theirs!.data!, 'base64').equals(png(1))).toBe(true);
      expect((await (await storageFor(vars)).readBuffer('alias/a.png')).equals(png(1))).toBe(true);
      // And only the aliases: the storage starts, and the server accepts its signature.
      const { AWS_ACCESS_KEY_ID: _a, AWS_SECRET_ACCESS_KEY: _s, ...onlyAliases } = vars;
      expect(await (await storageFor(onlyAliases)).exists('alias/a.png')).toBe(true);
    });

    it('without AWS_S3_REGION_NAME both sign for the region in AWS_DEFAULT_REGION', async () => {
      const { AWS_S3_REGION_NAME: _r, ...rest } = base;
      const vars = { ...rest, AWS_DEFAULT_REGION: 'eu-west-3' };
      await (await storageFor(base)).save('region/a.png', png(1));
      const [theirs] = await django(vars, [{ op: 'url', name: 'region/a.png' }]);
      const ours = await (await storageFor(vars)).url('region/a.png');
      expect(signedTarget(ours).region).toBe('eu-west-3');
      expect(signedTarget(theirs!.url!).region).toBe('eu-west-3');
      expect((await fetchBytes(ours)).status).toBe(200);
    });

    it('AWS_S3_ADDRESSING_STYLE: the same bucket URLs, path or virtual-host style, for an endpoint with a host name', async () => {
      const offline = { ...base, AWS_S3_ENDPOINT_URL: 'https://objects.example.test', AWS_QUERYSTRING_AUTH: 'False' };
      for (const style of [undefined, 'auto', 'path', 'virtual']) {
        const vars = style ? { ...offline, AWS_S3_ADDRESSING_STYLE: style } : offline;
        const storage = await storageFor(vars);
        const theirs = await django(
          vars,
          NAMES.map((name) => ({ op: 'url' as const, name })),
        );
        for (const [i, name] of NAMES.entries()) expect(await storage.url(name), `style ${style}`).toBe(theirs[i]!.url);
      }
      expect(configFromEnv({ ...offline, AWS_S3_ADDRESSING_STYLE: 'virtual' })).toMatchObject({ forcePathStyle: false });
    });
  },
);
