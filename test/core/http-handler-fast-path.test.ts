// The handler's one-lookup path (BaseStorage.openForServing, used by LocalStorage and
// MemoryStorage) answers exactly as the stat()-then-read() path every other storage takes: same
// status, headers and bytes for every kind of request, so the serving rules hold at full speed.
import http from 'node:http';
import { symlink, writeFile, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMediaHandler, splitTarget } from '../../src/core/http-handler.js';
import { UrlSigner } from '../../src/core/signed-url.js';
import type { MediaStorage } from '../../src/core/types.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { listen } from '../support/http.js';
import { tempDir } from '../support/tmp.js';

const SECRET = 'fast-path-secret-0123456789abcdef';
const JPEG = (bytes: number, fill: number): Buffer => Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(bytes - 4, fill)]);
const FILES: Array<[string, Buffer | string]> = [
  ['people/small.jpg', JPEG(40 * 1024, 1)],
  ['people/big.jpg', JPEG(300 * 1024, 2)], // streamed, not read whole
  ['people/exactly-64k.jpg', JPEG(64 * 1024, 3)],
  ['uploads/evil.jpg', '<html><script>alert(1)</script></html>'],
  ['uploads/drawing.svg', '<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"></svg>'],
  ['uploads/x.js', 'window.__pwned = 1'],
  ['docs/notes.txt', 'plain words, nothing to sniff'],
  ['docs/Sözleşme final.pdf', '%PDF-1.4 not really'],
];

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function request(base: string, target: string, headers: Record<string, string> = {}, method = 'GET'): Promise<Answer> {
  const { port } = new URL(base);
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: target, method, headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const { date: _date, connection: _connection, 'keep-alive': _keepAlive, ...rest } = res.headers;
        resolve({ status: res.statusCode ?? 0, headers: rest, body: Buffer.concat(chunks).toString('base64') });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

/** The same storage seen only through the MediaStorage interface: the handler cannot take its own path. */
function publicApiOnly(storage: MediaStorage): MediaStorage {
  return {
    name: storage.name,
    capabilities: storage.capabilities,
    stat: (key: string) => storage.stat(key),
    read: (key: string, options?: object) => storage.read(key, options),
  } as unknown as MediaStorage;
}

describe.each(['local', 'memory'] as const)('the %s handler answers as the stat-then-read path does', (backend) => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let storage: LocalStorage | MemoryStorage;
  let fast: Awaited<ReturnType<typeof listen>>;
  let generic: Awaited<ReturnType<typeof listen>>;

  beforeAll(async () => {
    tmp = await tempDir('fast-path');
    storage = backend === 'local' ? new LocalStorage({ root: tmp.dir, secret: SECRET, warnOnEphemeralDisk: false }) : new MemoryStorage({ secret: SECRET });
    for (const [key, body] of FILES) await storage.save(key, body);
    await storage.save('docs/empty.txt', '', { allowEmpty: true });
    const own = storage.handler();
    const viaStatAndRead = createMediaHandler(publicApiOnly(storage), { basePath: '/media', signer: new UrlSigner(SECRET) });
    fast = await listen((req, res) => own(req, res));
    generic = await listen((req, res) => viaStatAndRead(req, res));
  });
  afterAll(async () => {
    await fast.close();
    await generic.close();
    await tmp.remove();
  });

  it('for every key: GET, HEAD, conditionals, ranges, If-Range, downloads and signatures', async () => {
    const compared: string[] = [];
    for (const key of [...FILES.map(([k]) => k), 'docs/empty.txt']) {
      const target = `/media/${key.split('/').map(encodeURIComponent).join('/')}`;
      const first = await request(fast.url, target);
      expect(first.status, key).toBe(200);
      const etag = String(first.headers.etag);
      const lastModified = String(first.headers['last-modified']);
      const signed = new URL(await storage.url(key, { expiresIn: 60 }), 'http://x');
      const signedDownload = new URL(await storage.url(key, { expiresIn: 60, download: 'Ünïcode "name".bin' }), 'http://x');
      const cases: Array<[string, Record<string, string>, string?]> = [
        [target, {}],
        [target, {}, 'HEAD'],
        [target, { 'if-none-match': etag }],
        [target, { 'if-none-match': `W/${etag}, "other"` }],
        [target, { 'if-none-match': '"other"' }],
        [target, { 'if-none-match': '*' }],
        [target, { 'if-modified-since': lastModified }],
        [target, { 'if-modified-since': 'Thu, 01 Jan 1970 00:00:00 GMT' }],
        [target, { range: 'bytes=0-9' }],
        [target, { range: 'bytes=5-' }],
        [target, { range: 'bytes=-7' }],
        [target, { range: 'bytes=65530-70000' }],
        [target, { range: 'bytes=99999999-' }],
        [target, { range: 'bytes=0-1,4-5' }],
        [target, { range: 'bytes=x-y' }],
        [target, { range: 'bytes=0-3', 'if-range': etag }],
        [target, { range: 'bytes=0-3', 'if-range': lastModified }],
        [target, { range: 'bytes=0-3', 'if-range': '"stale"' }],
        [target, { range: 'bytes=0-3' }, 'HEAD'],
        [`${target}?download`, {}],
        [`${target}?download=other%20name.txt`, {}],
        [`${target}?v=123`, {}],
        [`${signed.pathname}${signed.search}`, {}],
        [`${signedDownload.pathname}${signedDownload.search}`, {}],
        [`${signed.pathname}${signed.search.replace(/signature=./, 'signature=A')}`, {}],
        [target, {}, 'POST'],
      ];
      for (const [t, headers, method] of cases) {
        const label = `${method ?? 'GET'} ${t} ${JSON.stringify(headers)}`;
        expect(await request(fast.url, t, headers, method), label).toEqual(await request(generic.url, t, headers, method));
        compared.push(label);
      }
    }
    expect(compared.length).toBeGreaterThan(200);
  });

  it('for missing, reserved, hostile and malformed targets', async () => {
    for (const target of [
      '/media/nope.jpg',
      '/media/people/',
      '/media/people',
      '/media/.media-storage-tmp/x',
      '/media/a/../people/small.jpg',
      '/media/%2e%2e/x',
      '/media/%zz',
      '/media//people/small.jpg',
      '//media/people/small.jpg',
      '/media/people/small.jpg#frag',
      '/other/x',
      '/media/people\\small.jpg',
    ]) {
      expect(await request(fast.url, target), target).toEqual(await request(generic.url, target));
    }
  });
});

describe('LocalStorage handler: links inside the root', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let server: Awaited<ReturnType<typeof listen>>;
  beforeAll(async () => {
    tmp = await tempDir('fast-path-links');
    const storage = new LocalStorage({ root: path.join(tmp.dir, 'media'), warnOnEphemeralDisk: false });
    await storage.save('people/a.jpg', JPEG(1000, 5));
    // A temp file of a save in progress, and links to it and to a real object from inside the root.
    await mkdir(path.join(tmp.dir, 'media', '.media-storage-tmp'), { recursive: true });
    await writeFile(path.join(tmp.dir, 'media', '.media-storage-tmp', 'abc123'), 'half an upload');
    await symlink(path.join(tmp.dir, 'media', '.media-storage-tmp', 'abc123'), path.join(tmp.dir, 'media', 'people', 'to-temp.jpg'));
    await symlink(path.join(tmp.dir, 'media', 'people', 'a.jpg'), path.join(tmp.dir, 'media', 'people', 'alias.jpg'));
    // Links out of the root: to a folder and to a file beside it.
    await mkdir(path.join(tmp.dir, 'outside'), { recursive: true });
    await writeFile(path.join(tmp.dir, 'outside', 'secret.jpg'), Buffer.concat([JPEG(100, 6), Buffer.from('SECRET')]));
    await symlink(path.join(tmp.dir, 'outside'), path.join(tmp.dir, 'media', 'elsewhere'));
    await symlink(path.join(tmp.dir, 'outside', 'secret.jpg'), path.join(tmp.dir, 'media', 'people', 'secret.jpg'));
    const handler = storage.handler();
    server = await listen((req, res) => handler(req, res));
  });
  afterAll(async () => {
    await server.close();
    await tmp.remove();
  });

  it('never answers for a file reached through a link out of the root: no bytes, no ETag, no 304, no range', async () => {
    for (const target of ['/media/elsewhere/secret.jpg', '/media/people/secret.jpg']) {
      for (const headers of [{}, { 'if-none-match': '*' }, { range: 'bytes=0-3' }] as Array<Record<string, string>>) {
        const answer = await request(server.url, target, headers);
        // An error answer (the handler's 500 for PERMISSION, or next(err) in an app): nothing of the file.
        expect(answer.status, `${target} ${JSON.stringify(headers)}`).toBeGreaterThanOrEqual(400);
        expect(answer.headers.etag).toBeUndefined();
        expect(Buffer.from(answer.body, 'base64').toString()).not.toContain('SECRET');
      }
      expect((await request(server.url, target, {}, 'HEAD')).status).toBeGreaterThanOrEqual(400);
    }
  });

  it('never serves a temp file through a link, and still serves a link to an object', async () => {
    const toTemp = await request(server.url, '/media/people/to-temp.jpg');
    expect(toTemp.status).toBe(404);
    expect(Buffer.from(toTemp.body, 'base64').toString()).not.toContain('upload');
    const alias = await request(server.url, '/media/people/alias.jpg');
    expect(alias.status).toBe(200);
    expect(Buffer.from(alias.body, 'base64')).toEqual(JPEG(1000, 5));
  });
});

describe('splitTarget', () => {
  it('gives what new URL gives, for plain and tricky request targets alike', () => {
    const segments = [
      '',
      '.',
      '..',
      '%2e',
      '.%2E',
      'a',
      'b.jpg',
      '.hidden',
      'x%2Fy',
      '%zz',
      '%',
      '~',
      "a'b",
      'a b',
      'a\\b',
      'é',
      'a#b',
      'a?b',
      ';x',
      'a|b',
      '[x]',
      '%00',
    ];
    const queries = ['', '?', '?signature=abc&expires=1', '?download', '?download=a%20b', '?a=b#c', '?q= x', '?é'];
    let checked = 0;
    for (const lead of ['/media/', '/', '//', '/media//']) {
      for (const a of segments) {
        for (const b of segments) {
          for (const q of queries) {
            const target = `${lead}${a}/${b}${q}`;
            let expected: { pathname: string; search: string } | undefined;
            try {
              const url = new URL(target, 'http://localhost');
              expected = { pathname: url.pathname, search: url.search.slice(1) };
            } catch {
              expected = undefined; // `//a b/...` names a host URL refuses
            }
            expect(splitTarget(target), target).toEqual(expected);
            checked++;
          }
        }
      }
    }
    expect(checked).toBe(4 * segments.length * segments.length * queries.length);
    expect(splitTarget('http://[bad')).toBeUndefined();
  });
});
