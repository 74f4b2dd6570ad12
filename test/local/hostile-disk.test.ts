import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { USER_CONTENT_CSP } from '../../src/core/serving.js';
import { isMediaStorageError } from '../../src/core/errors.js';
import { tryNormalizeKey } from '../../src/core/keys.js';
import { LocalStorage } from '../../src/local/index.js';
import { LYING_BODIES } from '../../src/testing/index.js';
import { listen } from '../support/http.js';
import { tempDir } from '../support/tmp.js';
import { describeKey, MUST_REJECT_KEYS, REJECT_OR_STORE_KEYS } from '../../src/testing/hostile-keys.js';

/** Every file and folder under `dir` (not following links) with a digest of each file's bytes. */
async function snapshot(dir: string, skip?: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  async function walk(current: string): Promise<void> {
    for (const entry of await readdir(current, { withFileTypes: true })) {
      const full = path.join(current, entry.name);
      if (full === skip) continue;
      if (entry.isDirectory()) {
        out.set(`${full}/`, 'dir');
        await walk(full);
      } else if (entry.isSymbolicLink()) {
        out.set(full, 'link');
      } else {
        out.set(
          full,
          createHash('sha256')
            .update(await readFile(full))
            .digest('hex'),
        );
      }
    }
  }
  await walk(dir);
  return out;
}

const SECRET = 'top secret outside the root';

describe('LocalStorage under the hostile-key corpus: nothing escapes the root', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let parent: string;
  let root: string;
  let storage: LocalStorage;
  let server: Awaited<ReturnType<typeof listen>>;
  let before: Map<string, string>;

  beforeAll(async () => {
    tmp = await tempDir('hostile-local');
    parent = tmp.dir;
    root = path.join(parent, 'root');
    // Bait around the root, at the places traversal would reach.
    await mkdir(path.join(parent, 'etc'), { recursive: true });
    await writeFile(path.join(parent, 'etc', 'passwd'), SECRET);
    await writeFile(path.join(parent, 'secret.txt'), SECRET);
    await writeFile(path.join(parent, 'x.txt'), SECRET);
    await mkdir(path.join(parent, 'root-sibling'));
    await writeFile(path.join(parent, 'root-sibling', 'x.txt'), SECRET);
    server = await listen((req, res) => storage.handler()(req, res));
    storage = new LocalStorage({ root, baseUrl: `${server.url}/media`, secret: 'hostile-local-secret-0123456789', warnOnEphemeralDisk: false });
    await storage.save('seed.txt', 'seed');
    before = await snapshot(parent, root);
  });

  afterAll(async () => {
    await server.close();
    await tmp.remove();
  });

  it('every operation on every hostile key is a typed error or stays inside the root', async () => {
    const untyped: string[] = [];
    const wrongCode: string[] = [];
    const expectTyped = async (label: string, promise: Promise<unknown>, mustReject: boolean): Promise<boolean> => {
      try {
        await promise;
        if (mustReject) wrongCode.push(`${label} succeeded`);
        return true;
      } catch (err) {
        if (!isMediaStorageError(err)) untyped.push(`${label}: ${String(err)}`);
        else if (mustReject && err.code !== 'INVALID_KEY') wrongCode.push(`${label}: ${err.code}`);
        return false;
      }
    };
    for (const [keys, mustReject] of [
      [MUST_REJECT_KEYS, true],
      [REJECT_OR_STORE_KEYS, false],
    ] as const) {
      for (const key of keys) {
        const label = describeKey(key);
        for (const candidate of [key, `nested/${key}`]) {
          const nestedMustReject = mustReject && tryNormalizeKey(candidate) === undefined;
          await expectTyped(`save ${label}`, storage.save(candidate, 'pwned'), nestedMustReject);
          await expectTyped(`copy to ${label}`, storage.copy('seed.txt', candidate), nestedMustReject);
          await expectTyped(`copy from ${label}`, storage.copy(candidate, 'copied.txt'), nestedMustReject);
          await expectTyped(`readBuffer ${label}`, storage.readBuffer(candidate), nestedMustReject);
          await expectTyped(`stat ${label}`, storage.stat(candidate), nestedMustReject);
          await expectTyped(`url ${label}`, storage.url(candidate, { expiresIn: 60 }), nestedMustReject);
          await expectTyped(`delete ${label}`, storage.delete(candidate), nestedMustReject);
        }
      }
    }
    expect(untyped).toEqual([]);
    expect(wrongCode).toEqual([]);
    // Outside the root: not one byte changed, nothing added or removed.
    expect(await snapshot(parent, root)).toEqual(before);
    // Inside: only the seed (and a copy of it) remain, and the empty temp folder; no temp file, no stray folder.
    const inside = [...(await snapshot(root)).keys()].map((p) => path.relative(root, p));
    expect(inside.sort()).toEqual(['.media-storage-tmp', 'copied.txt', 'seed.txt']);
  }, 120_000);

  it('answers hostile request paths without serving anything from outside the root', async () => {
    const paths = [
      '/media/../secret.txt',
      '/media/%2e%2e/secret.txt',
      '/media/%2E%2E/%2E%2E/x.txt',
      '/media/..%2fsecret.txt',
      '/media/..%2Fetc%2Fpasswd',
      '/media/..%5csecret.txt',
      '/media/%252e%252e/secret.txt',
      '/media/%c0%ae%c0%ae/secret.txt',
      '/media/%2e%2e%2f%2e%2e%2fsecret.txt',
      '/media/....//secret.txt',
      '/media/.%2e/secret.txt',
      '/media/%2fetc%2fpasswd',
      '/media//etc/passwd',
      '/media/%00/../secret.txt',
      '/media/..%00/secret.txt',
      '/media/%ef%bc%8e%ef%bc%8e/secret.txt', // ．．
      '/media/%ef%bc%8e%ef%bc%8e%ef%bc%8fsecret.txt', // ．．／
      '/media/%e2%80%a5/secret.txt', // ‥
      '/media/..;/secret.txt',
      '/media/C:%5cWindows%5cwin.ini',
      '/media/%5c%5cserver%5cshare',
      '/media/%e2%80%ae/secret.txt',
      '/media/seed.txt/../../secret.txt',
      '/media/%',
      '/media/%zz',
    ];
    const leaks: string[] = [];
    for (const p of paths) {
      // Raw paths: fetch would normalise "../" before sending; a raw socket sends exactly this.
      const res = await new Promise<{ status: number; body: string }>((resolve, reject) => {
        import('node:http').then(({ request }) => {
          const req = request({ host: '127.0.0.1', port: new URL(server.url).port, path: p, method: 'GET', agent: false }, (r) => {
            let body = '';
            r.on('data', (c: Buffer) => (body += c.toString('utf8')));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.end();
        }, reject);
      });
      if (res.status === 200 || res.body.includes(SECRET)) leaks.push(`${p} -> ${res.status} ${res.body.slice(0, 40)}`);
      expect(res.status, p).toBeGreaterThanOrEqual(400);
      expect(res.status, p).toBeLessThan(500);
    }
    expect(leaks).toEqual([]);
  });

  it('refuses to write or read through a symbolic link that leaves the root', async () => {
    await symlink(parent, path.join(root, 'escape-link'));
    try {
      const attempts = [
        storage.save('escape-link/secret.txt', 'overwritten'),
        storage.save('escape-link/new.txt', 'planted'),
        storage.readBuffer('escape-link/secret.txt'),
        storage.stat('escape-link/secret.txt'),
        storage.copy('escape-link/secret.txt', 'stolen.txt'),
        storage.copy('seed.txt', 'escape-link/x.txt'),
      ];
      for (const result of await Promise.allSettled(attempts)) {
        expect(result.status).toBe('rejected');
        if (result.status === 'rejected') expect(['PERMISSION', 'NOT_FOUND']).toContain((result.reason as { code?: string }).code);
      }
      // Not an object of this storage: exists answers false, as for a missing one.
      expect(await storage.exists('escape-link/secret.txt')).toBe(false);
      expect(await readFile(path.join(parent, 'secret.txt'), 'utf8')).toBe(SECRET);
      await expect(stat(path.join(parent, 'new.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
      await expect(stat(path.join(root, 'stolen.txt'))).rejects.toMatchObject({ code: 'ENOENT' });
    } finally {
      await import('node:fs/promises').then((fs) => fs.unlink(path.join(root, 'escape-link')));
    }
  });
});

describe("LocalStorage's handler serves active content safely", () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let storage: LocalStorage;
  let server: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    tmp = await tempDir('active-content');
    server = await listen((req, res) => storage.handler()(req, res));
    storage = new LocalStorage({ root: tmp.dir, baseUrl: `${server.url}/media`, secret: 'active-content-secret-0123456789', warnOnEphemeralDisk: false });
  });
  afterAll(async () => {
    await server.close();
    await tmp.remove();
  });

  for (const lying of LYING_BODIES) {
    it(`${lying.name}: ${lying.really === 'markup' ? 'a sandboxed attachment with nosniff' : 'an inert image with nosniff'}, plain, signed, ranged and HEAD`, async () => {
      const key = `uploads/${lying.name}`;
      await storage.save(key, lying.body, lying.contentType ? { contentType: lying.contentType } : {});
      const urls = [await storage.url(key), await storage.url(key, { expiresIn: 60 })];
      for (const url of urls) {
        for (const init of [{}, { headers: { range: 'bytes=0-3' } }, { method: 'HEAD' }] as RequestInit[]) {
          const res = await fetch(url, init);
          await res.arrayBuffer();
          const what = `${init.method ?? 'GET'} ${JSON.stringify(init.headers ?? {})} ${url.includes('signature') ? 'signed' : 'plain'}`;
          expect([200, 206], what).toContain(res.status);
          expect(res.headers.get('x-content-type-options'), what).toBe('nosniff');
          if (lying.really === 'markup') {
            expect(res.headers.get('content-disposition') ?? '', what).toMatch(/^attachment; filename="/);
            expect(res.headers.get('content-security-policy'), what).toBe(USER_CONTENT_CSP);
            expect(res.headers.get('content-security-policy'), what).toMatch(/\bsandbox\b/);
            expect(res.headers.get('content-type') ?? '', what).not.toMatch(/^image\/(?!svg\+xml)/);
          } else {
            expect(res.headers.get('content-type'), what).toBe('image/gif');
            expect(res.headers.get('content-disposition'), what).toBeNull();
          }
        }
      }
    });
  }
});
