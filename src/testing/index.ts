/**
 * The published contract suite: every backend, ours or a plugin's, runs it to prove it behaves
 * like the others. Call {@link describeStorageContract} from a vitest test file.
 *
 * ```ts
 * import { describeStorageContract } from 'media-storage/testing';
 * describeStorageContract('my-backend', async () => ({ storage: new MyStorage(opts), cleanup: () => ... }));
 * ```
 */
import { forEachConcurrent } from '../core/pool.js';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_MAX_EXPIRES_IN } from '../core/base.js';
import { DEFAULT_SERVING_RULE, isActiveContent, isExecutableContentType } from '../core/serving.js';
import { isMediaStorageError, isNotFound, type MediaStorageErrorCode } from '../core/errors.js';
import type { Capabilities, DirectUpload, DirectUploadEnforcement, MediaStorage, SkippedObject } from '../core/types.js';
import { LYING_BODIES } from './bodies.js';
import { sendDirectUpload } from './direct-upload.js';
import { HOSTILE_KEYS, SPECIAL_KEYS } from './keys.js';

export { HOSTILE_KEYS, SPECIAL_KEYS } from './keys.js';
export { HOSTILE_INPUT_OPTIONS, MUST_REJECT_KEYS, REJECT_OR_STORE_KEYS } from './hostile-keys.js';
export { LYING_BODIES, type LyingBody } from './bodies.js';
export { sendDirectUpload, type SendDirectUploadOptions } from './direct-upload.js';

/** What the factory gives the suite. */
export interface StorageUnderTest {
  storage: MediaStorage;
  /** Called once after the suite (stop servers, remove folders). */
  cleanup?: () => Promise<void> | void;
  /** How the suite fetches `url()` results; default the global fetch. Needed when URLs point at a host reachable only through a test proxy. */
  fetch?: (url: string, init?: RequestInit) => Promise<Response>;
  /**
   * Writes an object the way other software would, with the backend's native client and not
   * through the storage (a raw S3Client, node:fs, the B2 or Cloudinary API): the foreign-object
   * tests run only when it is given, and are reported as skipped otherwise. See {@link SeedForeign}.
   */
  seedForeign?: SeedForeign;
}

/**
 * Stores `body` under `name` behind the storage's back. `name` is relative to the storage, like a
 * key (the seeder adds the storage's own prefix, location or folder), but it need not be a valid
 * key: it is written exactly, byte for byte (`Jose\u0301.jpg`, `x/`, `a//b`, `ctl\u0001.txt`).
 * Bodies larger than the backend's part size go up through its native multipart (large-file,
 * chunked) API, as the native tools send them. `metadata` is what the other software meant, and
 * the seeder writes it the way that software does on this backend (S3: values outside printable
 * ASCII as RFC 2047 words, as the S3 console and S3 itself do). Resolves to `false`, without
 * writing anything, when the native store cannot hold this name as an object (a folder marker on
 * a file system, `a//b` on B2): the suite then skips that case and says so.
 */
export type SeedForeign = (name: string, body: Buffer, options?: { contentType?: string; metadata?: Record<string, string> }) => Promise<boolean | void>;

/** Options of {@link describeStorageContract}: the capabilities tested, the sizes of the heavy tests, extra key corpora, and tests a test server cannot pass. */
export interface ContractOptions {
  /** Capabilities to test; default the storage's own declaration. */
  capabilities?: Partial<Capabilities>;
  /** Size of the large-body round trip; default 10 MiB. */
  largeBodyBytes?: number;
  /** How many keys the paging test stores (must be over 1,000 to cross a default page); default 1,005. */
  listingKeys?: number;
  /**
   * Concurrent saves in the concurrency tests (all started at once); default 16 to one key and 64
   * to distinct keys. The issue's bar is 64 and 1,000.
   */
  concurrentSavesOneKey?: number;
  concurrentSavesDistinctKeys?: number;
  /** Extra hostile keys (e.g. a larger corpus) that every operation must reject with INVALID_KEY. */
  extraHostileKeys?: readonly string[];
  /**
   * Odd keys (encoded traversal, device names, look-alikes...) that a backend must either reject
   * with INVALID_KEY in every operation, or store and give back exactly: same bytes, the same key
   * (byte for byte) in listings, and over its URL. Each is tried under the run's own prefix.
   */
  rejectOrStoreKeys?: readonly string[];
  /** Timeout for the slow tests (large bodies, listing), in ms; default 120 s. */
  slowTestTimeout?: number;
  /**
   * Size of the object the foreign-object tests seed through the backend's native multipart or
   * large-file API; default 30,000,000 bytes. 0 leaves that test out (visibly).
   */
  foreignLargeObjectBytes?: number;
  /**
   * Set false only for a test server that writes objects in place (s3rver), so a reader can see a
   * half-written one, and concurrent writers of one key can leave a mix of their bodies, whatever
   * the adapter does; both one-key concurrency tests are then skipped, visibly (saves to distinct
   * keys still run).
   */
  checkReadsDuringWrites?: boolean;
  /**
   * Set false only for a test server that checks no signatures (s3rver): the direct-upload tests
   * of what the store enforces (key, type, size, expiry) are then skipped, visibly; the upload
   * itself is still tested.
   */
  checkDirectUploadEnforcement?: boolean;
}

const PNG_1PX = Buffer.from(
  '89504e470d0a1a0a0000000d4948445200000001000000010806000000' + '1f15c4890000000d49444154789c63f8cfc0f01f0005000201a0d1e33a0000000049454e44ae426082',
  'hex',
);

function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Resolves to the error's code, failing the test when the promise does not reject with a MediaStorageError. */
async function codeOf(promise: Promise<unknown>): Promise<MediaStorageErrorCode> {
  try {
    await promise;
  } catch (err) {
    if (!isMediaStorageError(err)) throw new Error(`expected a MediaStorageError, got ${String(err)}`, { cause: err });
    return err.code;
  }
  throw new Error('expected the operation to fail, but it succeeded');
}

/** A stream that yields `count` chunks of `size` bytes with a pause between them. */
function slowStream(count: number, size: number, fill = 0x61): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent === count) return this.push(null);
      sent++;
      setTimeout(() => this.push(Buffer.alloc(size, fill)), 2);
    },
  });
}

/** A stream that yields some bytes and then fails. */
function failingStream(afterBytes: number): Readable {
  let sent = false;
  return new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(afterBytes, 0x62));
      } else {
        setImmediate(() => this.destroy(new Error('client connection reset')));
      }
    },
  });
}

/** A long name cut for messages. */
function shorten(text: string): string {
  return text.length > 48 ? `${text.slice(0, 40)}…(${text.length} chars)` : text;
}

/**
 * Registers the contract tests for one backend. `factory` makes a fresh storage (called once for
 * the suite; every test works under its own unique key prefix). Tests of capabilities the
 * backend lacks are registered as skipped, so reports show them.
 */
export function describeStorageContract(
  name: string,
  factory: () => Promise<StorageUnderTest | MediaStorage> | StorageUnderTest | MediaStorage,
  options: ContractOptions = {},
): void {
  describe(`MediaStorage contract: ${name}`, () => {
    let sut: StorageUnderTest;
    let s: MediaStorage;
    let caps: Capabilities;
    const run = `contract-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
    let counter = 0;
    /** A fresh key under this run's prefix. */
    const k = (name: string): string => `${run}/${++counter}-${name}`;
    const slow = options.slowTestTimeout ?? 120_000;
    const httpFetch = (url: string, init?: RequestInit): Promise<Response> => {
      if (!/^https?:\/\//.test(url)) throw new Error(`url() must give an absolute http(s) URL for the contract suite to fetch; got ${url}`);
      return (sut.fetch ?? fetch)(url, init);
    };

    // Capabilities are known only once the factory ran; tests read them lazily through `has`.
    const declared = options.capabilities;
    const has = (cap: keyof Capabilities): boolean => {
      if (declared && declared[cap] !== undefined) return !!declared[cap];
      return !!caps?.[cap];
    };
    /** `it` for a capability: registered as skipped (with the reason in its name) when the declaration lacks it. */
    const itWith = (cap: keyof Capabilities, title: string, fn: (ctx: { skip: (note?: string) => void }) => Promise<void>, timeout?: number): void => {
      // Declared capabilities decide at collection time; otherwise the test checks at run time.
      if (declared && declared[cap] === false) {
        it.skip(`${title} [needs capability ${cap}]`, fn);
        return;
      }
      it(
        `${title} [capability ${cap}]`,
        async (ctx) => {
          if (!has(cap)) {
            ctx.skip(`backend does not declare ${cap}`);
            return;
          }
          await fn(ctx);
        },
        timeout,
      );
    };

    beforeAll(async () => {
      const made = await factory();
      sut = 'storage' in made && typeof (made as StorageUnderTest).storage === 'object' ? (made as StorageUnderTest) : { storage: made as MediaStorage };
      s = sut.storage;
      caps = { ...s.capabilities, ...(declared as Capabilities | undefined) };
    }, 120_000);

    afterAll(async () => {
      await sut?.cleanup?.();
    }, 120_000);

    describe('round trips', () => {
      const bodies: Array<[string, () => unknown, Buffer]> = [
        ['Buffer', () => Buffer.from('buffer body'), Buffer.from('buffer body')],
        ['Uint8Array', () => new Uint8Array([1, 2, 3, 4, 5]), Buffer.from([1, 2, 3, 4, 5])],
        ['string (UTF-8)', () => 'héllo wörld ✓', Buffer.from('héllo wörld ✓', 'utf8')],
        ['Node Readable', () => Readable.from([Buffer.from('node '), Buffer.from('stream')]), Buffer.from('node stream')],
        [
          'web ReadableStream',
          () =>
            new ReadableStream<Uint8Array>({
              start(controller) {
                controller.enqueue(new TextEncoder().encode('web '));
                controller.enqueue(new TextEncoder().encode('stream'));
                controller.close();
              },
            }),
          Buffer.from('web stream'),
        ],
        ['Blob', () => new Blob(['blob body']), Buffer.from('blob body')],
        ['File', () => new File(['file body'], 'upload.txt', { type: 'text/plain' }), Buffer.from('file body')],
      ];
      for (const [label, make, expected] of bodies) {
        it(`saves and reads back a ${label}`, async () => {
          const key = k('round-trip.txt');
          const info = await s.save(key, make() as never);
          expect(info.key).toBe(key);
          expect(info.size).toBe(expected.length);
          expect(typeof info.contentType).toBe('string');
          expect(await s.readBuffer(key)).toEqual(expected);
          expect(await s.exists(key)).toBe(true);
        });
      }

      it('streams a body of many small chunks', async () => {
        const key = k('slow.bin');
        const info = await s.save(key, slowStream(64, 1024));
        expect(info.size).toBe(64 * 1024);
        const back = await s.readBuffer(key);
        expect(back.length).toBe(64 * 1024);
        expect(back.every((b) => b === 0x61)).toBe(true);
      });

      it(
        'round-trips a large body as a Buffer and as a stream',
        async () => {
          const size = options.largeBodyBytes ?? 10 * 1024 * 1024;
          const data = randomBytes(size);
          const a = k('large-buffer.bin');
          const b = k('large-stream.bin');
          expect((await s.save(a, data)).size).toBe(size);
          const chunks: Buffer[] = [];
          for (let i = 0; i < size; i += 256 * 1024) chunks.push(data.subarray(i, i + 256 * 1024));
          expect((await s.save(b, Readable.from(chunks))).size).toBe(size);
          expect(sha256(await s.readBuffer(a))).toBe(sha256(data));
          expect(sha256(await s.readBuffer(b))).toBe(sha256(data));
          expect((await s.stat(b)).size).toBe(size);
        },
        slow,
      );

      it('reads a stream that can be consumed incrementally', async () => {
        const key = k('stream-read.bin');
        const data = randomBytes(300_000);
        await s.save(key, data);
        const stream = await s.read(key);
        let total = 0;
        for await (const chunk of stream) total += (chunk as Buffer).length;
        expect(total).toBe(data.length);
      });

      it('reports progress up to the full size', async () => {
        const key = k('progress.bin');
        const seen: number[] = [];
        await s.save(key, Readable.from([Buffer.alloc(1000), Buffer.alloc(2000), Buffer.alloc(3000)]), {
          onProgress: (p) => seen.push(p.loaded),
        });
        expect(seen.length).toBeGreaterThan(0);
        expect(seen[seen.length - 1]).toBe(6000);
        for (let i = 1; i < seen.length; i++) expect(seen[i]!).toBeGreaterThanOrEqual(seen[i - 1]!);
      });
    });

    describe('empty bodies', () => {
      it('rejects an empty Buffer with INVALID_INPUT and stores nothing', async () => {
        const key = k('empty.txt');
        expect(await codeOf(s.save(key, Buffer.alloc(0)))).toBe('INVALID_INPUT');
        expect(await s.exists(key)).toBe(false);
      });
      it('rejects an empty stream with INVALID_INPUT and stores nothing', async () => {
        const key = k('empty-stream.txt');
        expect(await codeOf(s.save(key, Readable.from([])))).toBe('INVALID_INPUT');
        expect(await s.exists(key)).toBe(false);
      });
      // `emptyObjects` is the one capability that defaults to true when a backend does not declare it.
      const emptyObjects = (): boolean => (declared?.emptyObjects ?? caps?.emptyObjects) !== false;
      it('stores a zero-byte object when allowEmpty is set [capability emptyObjects]', async (ctx) => {
        if (!emptyObjects()) {
          ctx.skip('backend declares emptyObjects: false');
          return;
        }
        const key = k('zero.txt');
        const info = await s.save(key, Buffer.alloc(0), { allowEmpty: true });
        expect(info.size).toBe(0);
        expect(await s.exists(key)).toBe(true);
        expect((await s.stat(key)).size).toBe(0);
        expect((await s.readBuffer(key)).length).toBe(0);
      });
      it('without emptyObjects, a zero-byte save with allowEmpty gives UNSUPPORTED and stores nothing', async (ctx) => {
        if (emptyObjects()) {
          ctx.skip('backend stores zero-byte objects');
          return;
        }
        const key = k('zero-refused.txt');
        expect(await codeOf(s.save(key, Buffer.alloc(0), { allowEmpty: true }))).toBe('UNSUPPORTED');
        expect(await codeOf(s.save(key, Readable.from([]), { allowEmpty: true }))).toBe('UNSUPPORTED');
        expect(await s.exists(key)).toBe(false);
      });
    });

    describe('overwrite policies', () => {
      it('overwrites by default', async () => {
        const key = k('over.txt');
        await s.save(key, 'first');
        await s.save(key, 'second version');
        expect((await s.readBuffer(key)).toString()).toBe('second version');
        expect((await s.stat(key)).size).toBe('second version'.length);
      });
      it('ifExists "fail" gives ALREADY_EXISTS and keeps the old object', async () => {
        const key = k('keep.txt');
        await s.save(key, 'original');
        expect(await codeOf(s.save(key, 'intruder', { ifExists: 'fail' }))).toBe('ALREADY_EXISTS');
        expect((await s.readBuffer(key)).toString()).toBe('original');
      });
      it('ifExists "fail" stores when the key is free', async () => {
        const key = k('free.txt');
        await s.save(key, 'fresh', { ifExists: 'fail' });
        expect((await s.readBuffer(key)).toString()).toBe('fresh');
      });
      it('ifExists "rename" picks a free name in the same folder with the same extension', async () => {
        const key = k('avatar.png');
        const first = await s.save(key, PNG_1PX, { ifExists: 'rename' });
        expect(first.key).toBe(key);
        const second = await s.save(key, Buffer.concat([PNG_1PX, Buffer.from('x')]), { ifExists: 'rename' });
        expect(second.key).not.toBe(key);
        expect(second.key.startsWith(key.slice(0, key.lastIndexOf('/') + 1))).toBe(true);
        expect(second.key.endsWith('.png')).toBe(true);
        expect((await s.readBuffer(key)).equals(PNG_1PX)).toBe(true);
        expect((await s.readBuffer(second.key)).length).toBe(PNG_1PX.length + 1);
      });
      itWith('atomicCreate', 'of concurrent ifExists "fail" saves to one key exactly one wins', async () => {
        const key = k('race.txt');
        const results = await Promise.allSettled(Array.from({ length: 8 }, (_, i) => s.save(key, `writer ${i}`, { ifExists: 'fail' })));
        expect(results.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
        for (const r of results) if (r.status === 'rejected') expect((r.reason as { code?: string }).code).toBe('ALREADY_EXISTS');
      });
    });

    describe('delete and exists', () => {
      it('exists is false before save, true after, false after delete', async () => {
        const key = k('life.txt');
        expect(await s.exists(key)).toBe(false);
        await s.save(key, 'alive');
        expect(await s.exists(key)).toBe(true);
        await s.delete(key);
        expect(await s.exists(key)).toBe(false);
      });
      it('delete is idempotent', async () => {
        const key = k('twice.txt');
        await s.save(key, 'x');
        await s.delete(key);
        await expect(s.delete(key)).resolves.toBeUndefined();
        await expect(s.delete(k('never-existed.txt'))).resolves.toBeUndefined();
      });
      it('read, stat and copy of a missing key give NOT_FOUND', async () => {
        const key = k('missing.txt');
        expect(await codeOf(s.read(key).then((r) => new Response(Readable.toWeb(r) as ReadableStream).arrayBuffer()))).toBe('NOT_FOUND');
        expect(await codeOf(s.stat(key))).toBe('NOT_FOUND');
        expect(await codeOf(s.copy(key, k('copy-target.txt')))).toBe('NOT_FOUND');
        await s.stat(key).catch((err) => {
          expect(isNotFound(err)).toBe(true);
          // Wrappers (mirror, layers) report the backend that failed, so only presence is checked.
          expect(typeof (err as { backend?: string }).backend).toBe('string');
        });
      });
      it('a deleted object is gone from listings', async () => {
        const prefix = k('gone/');
        await s.save(`${prefix}a.txt`, 'a');
        await s.save(`${prefix}b.txt`, 'b');
        await s.delete(`${prefix}a.txt`);
        expect((await s.list(prefix)).items.map((i) => i.key)).toEqual([`${prefix}b.txt`]);
      });
    });

    describe('stat and content types', () => {
      it('gives size, content type, etag and last-modified', async () => {
        const key = k('photo.png');
        const before = Date.now();
        await s.save(key, PNG_1PX);
        const info = await s.stat(key);
        expect(info.key).toBe(key);
        expect(info.size).toBe(PNG_1PX.length);
        expect(info.contentType.split(';')[0]).toBe('image/png');
        if (info.etag !== undefined) expect(typeof info.etag).toBe('string');
        if (info.lastModified !== undefined) {
          expect(info.lastModified).toBeInstanceOf(Date);
          expect(Math.abs(info.lastModified.getTime() - before)).toBeLessThan(5 * 60_000);
        }
      });
      itWith('md5Etag', 'the etag is the MD5 of the bytes', async () => {
        const key = k('md5.txt');
        const data = Buffer.from('checksum me');
        await s.save(key, data);
        expect((await s.stat(key)).etag).toBe(createHash('md5').update(data).digest('hex'));
      });
      it('sniffs the type from the bytes when the extension says nothing', async () => {
        const key = k('upload-without-extension');
        const info = await s.save(key, PNG_1PX);
        expect(info.contentType).toBe('image/png');
        expect((await s.stat(key)).contentType.split(';')[0]).toBe('image/png');
      });
      it('never labels markup named .jpg as an image', async () => {
        const key = k('not-really.jpg');
        let info: Awaited<ReturnType<MediaStorage['save']>>;
        try {
          info = await s.save(key, '<html><body><script>alert(1)</script></body></html>');
        } catch (err) {
          // A backend that cannot serve active content safely may refuse it, storing nothing.
          expect(isMediaStorageError(err) && ['INVALID_INPUT', 'UNSUPPORTED'].includes(err.code), String(err)).toBe(true);
          expect(await s.exists(key)).toBe(false);
          return;
        }
        // Markup is stored under a type no browser renders or runs (application/octet-stream by the serving rules).
        expect(info.contentType).not.toMatch(/^image\//);
        expect(isExecutableContentType(info.contentType), info.contentType).toBe(false);
        expect((await s.stat(key)).contentType).toBe(info.contentType);
      });
      it('guesses from the extension for plain text', async () => {
        const key = k('notes.txt');
        const info = await s.save(key, 'just some words');
        expect(info.contentType.split(';')[0]).toBe('text/plain');
      });
      itWith('metadata', 'keeps an explicit content type, Cache-Control and custom metadata', async () => {
        const key = k('meta.bin');
        await s.save(key, 'payload', { contentType: 'application/x-custom', cacheControl: 'public, max-age=60', metadata: { owner: 'agent-7' } });
        const info = await s.stat(key);
        expect(info.contentType).toBe('application/x-custom');
        expect(info.cacheControl).toBe('public, max-age=60');
        expect(info.metadata).toMatchObject({ owner: 'agent-7' });
      });
      itWith('metadata', 'keeps metadata values outside printable ASCII exactly, with names lower-cased as S3 and B2 store them', async () => {
        const key = k('meta-unicode.bin');
        const given = {
          'Uploaded-By': 'Jos\u00e9',
          note: '\u65e5\u672c\u8a9e\u306e\u30e1\u30e2',
          emoji: '\ud83d\ude00 ok',
          long: '\u00e9'.repeat(200),
          equals: 'a=b?c',
          nbsp: '\u00a0spaced\u00a0',
        };
        const expected = {
          'uploaded-by': 'Jos\u00e9',
          note: '\u65e5\u672c\u8a9e\u306e\u30e1\u30e2',
          emoji: '\ud83d\ude00 ok',
          long: '\u00e9'.repeat(200),
          equals: 'a=b?c',
          nbsp: '\u00a0spaced\u00a0',
        };
        const saved = await s.save(key, 'payload', { metadata: given });
        if (saved.metadata) expect(saved.metadata).toEqual(expected);
        expect((await s.stat(key)).metadata).toEqual(expected);
        const copy = k('meta-unicode-copy.bin');
        await s.copy(key, copy);
        expect((await s.stat(copy)).metadata).toEqual(expected);
      });
    });

    describe('metadata a backend could not give back', () => {
      const refused: Array<[string, unknown]> = [
        ['a line break in a value', { note: 'a\nb' }],
        ['a tab in a value', { note: 'a\tb' }],
        ['NUL in a value', { note: 'a\u0000b' }],
        ['a leading space', { note: ' padded' }],
        ['a trailing space', { note: 'padded ' }],
        ['an RFC 2047 encoded word', { note: '=?UTF-8?B?SGk=?=' }],
        ['a lone surrogate', { note: 'a\ud800b' }],
        ['a name with a space', { 'uploaded by': 'x' }],
        ['a non-ASCII name', { 'na\u00efve': 'x' }],
        ['an empty name', { '': 'x' }],
        ['two names differing only in case', { Owner: 'a', owner: 'b' }],
        ['a value that is not a string', { count: 3 }],
        ['metadata that is not an object', 'owner=x'],
      ];
      it('refuses, on every backend, metadata that HTTP or S3 would change, with INVALID_INPUT and nothing stored', async () => {
        for (const [label, metadata] of refused) {
          const key = k('meta-refused.txt');
          expect(await codeOf(s.save(key, 'payload', { metadata: metadata as Record<string, string> })), label).toBe('INVALID_INPUT');
          expect(await s.exists(key), label).toBe(false);
        }
        const key = k('cache-refused.txt');
        expect(await codeOf(s.save(key, 'payload', { cacheControl: 'max-age=60\r\nX-Evil: 1' }))).toBe('INVALID_INPUT');
        expect(await codeOf(s.save(key, 'payload', { cacheControl: 'max-\u00e2ge' }))).toBe('INVALID_INPUT');
        expect(await s.exists(key)).toBe(false);
      });
    });

    describe('the content type is the truth', () => {
      // What save answers is what stat reports and what the store serves, and no executable kind
      // is ever stored or served under a type a browser would run or apply.
      const script = 'window.__pwned = 1;';
      const cases: Array<{ name: string; body: string | Buffer; contentType?: string; executable?: boolean }> = [
        { name: 'photo.png', body: PNG_1PX },
        { name: 'notes.txt', body: 'just some words' },
        { name: 'custom.bin', body: 'payload', contentType: 'application/x-custom' },
        { name: 'claimed.png', body: PNG_1PX, contentType: 'Image/PNG' },
        { name: 'script.js', body: script, executable: true },
        { name: 'js-as.jpg', body: script, contentType: 'text/javascript', executable: true },
        { name: 'module.mjs', body: script, executable: true },
        { name: 'style.css', body: 'body { color: red }', executable: true },
        { name: 'page.html', body: '<!doctype html><script>alert(1)</script>', executable: true },
        { name: 'comment.jpg', body: '<!-- x --><html><script>alert(1)</script></html>', executable: true },
        { name: 'drawing.svg', body: '<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', executable: true },
        { name: 'feed.xml', body: '<?xml version="1.0"?><rss/>', executable: true },
      ];
      for (const c of cases) {
        it(`save, stat and the served Content-Type agree for ${c.name}${c.contentType ? ` saved as ${c.contentType}` : ''}`, async () => {
          const key = k(c.name);
          let info: Awaited<ReturnType<MediaStorage['save']>>;
          try {
            info = await s.save(key, c.body, c.contentType ? { contentType: c.contentType } : {});
          } catch (err) {
            // A backend that cannot serve an executable kind safely may refuse it, storing nothing.
            expect(c.executable && isMediaStorageError(err) && ['INVALID_INPUT', 'UNSUPPORTED'].includes(err.code), String(err)).toBe(true);
            expect(await s.exists(key)).toBe(false);
            return;
          }
          expect(isExecutableContentType(info.contentType), `save answered ${info.contentType}`).toBe(false);
          expect((await s.stat(key)).contentType).toBe(info.contentType);
          if (!(has('publicUrls') || has('signedUrls'))) return;
          const res = await httpFetch(await s.url(key, has('publicUrls') ? {} : { expiresIn: 300 }));
          await res.arrayBuffer();
          expect(res.status).toBe(200);
          expect(res.headers.get('content-type')).toBe(info.contentType);
          // Shown inline only under a type no browser runs (a raster image, audio, video); else downloaded.
          if (c.executable && !DEFAULT_SERVING_RULE.isInline(info.contentType))
            expect(res.headers.get('content-disposition') ?? '', `${c.name} served inline`).toMatch(/^attachment/i);
        });
      }

      it('an explicit contentType with control characters, or not type/subtype, is INVALID_INPUT before the body is read', async () => {
        const bad = [
          'text/plain\r\nX-Injected: 1',
          'text/html\u0000',
          'text/plain\n',
          'image/jpeg\t',
          'image/png\u2028',
          'tëxt/plain',
          'jpeg',
          '',
          ' ',
          'image/',
          '/png',
          'image/png/x',
          'image png',
          'image/png; charset',
          'image/png; =x',
          `image/${'x'.repeat(300)}`,
          42 as unknown as string,
        ];
        const failures: string[] = [];
        for (const contentType of bad) {
          const key = k('bad-type.txt');
          let read = false;
          const body = new Readable({
            read() {
              read = true;
              this.push(null);
            },
          });
          const code = await codeOf(s.save(key, body, { contentType })).catch((e: Error) => e.message);
          if (code !== 'INVALID_INPUT') failures.push(`${JSON.stringify(contentType)}: ${code}`);
          if (read) failures.push(`${JSON.stringify(contentType)}: the body was read`);
          if (await s.exists(key)) failures.push(`${JSON.stringify(contentType)}: something was stored`);
        }
        expect(failures).toEqual([]);
      });

      it('rejects an expiresIn beyond what the backend can honour with INVALID_INPUT, and honours its longest', async () => {
        const max = caps.maxExpiresIn ?? DEFAULT_MAX_EXPIRES_IN;
        const key = k('expiry.png');
        for (const expiresIn of [max + 1, 1e15, Number.POSITIVE_INFINITY, Number.NaN]) {
          expect(await codeOf(s.url(key, { expiresIn })), String(expiresIn)).toBe('INVALID_INPUT');
        }
        if (!has('signedUrls')) return;
        await s.save(key, PNG_1PX);
        const res = await httpFetch(await s.url(key, { expiresIn: max }));
        expect(res.status).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).equals(PNG_1PX)).toBe(true);
      });
    });

    describe('listing', () => {
      it(
        'pages past 1,000 keys with cursors, in key order, with no duplicates',
        async () => {
          const count = options.listingKeys ?? 1005;
          const prefix = k('many/');
          const keys = Array.from({ length: count }, (_, i) => `${prefix}${String(i).padStart(5, '0')}.txt`);
          await forEachConcurrent(keys, 32, async (key) => {
            await s.save(key, 'x');
          });
          const first = await s.list(prefix);
          expect(first.items).toHaveLength(Math.min(1000, count));
          expect(first.cursor).toBeTruthy();
          const second = await s.list(prefix, { cursor: first.cursor });
          expect(second.items).toHaveLength(count - 1000);
          expect(second.cursor).toBeFalsy();
          expect([...first.items, ...second.items].map((i) => i.key)).toEqual(keys);
          const small: string[] = [];
          let cursor: string | undefined;
          let pages = 0;
          do {
            const page = await s.list(prefix, { cursor, limit: 400 });
            small.push(...page.items.map((i) => i.key));
            cursor = page.cursor;
            pages++;
          } while (cursor);
          expect(pages).toBe(Math.ceil(count / 400));
          expect(small).toEqual(keys);
          const all: string[] = [];
          for await (const info of s.listAll(prefix)) all.push(info.key);
          expect(all).toEqual(keys);
        },
        slow,
      );
      it('filters by folder and by name prefix, with sizes', async () => {
        const base = k('filter/');
        await s.save(`${base}ab/one.txt`, '1');
        await s.save(`${base}ab/two.txt`, '22');
        await s.save(`${base}abc.txt`, '333');
        await s.save(`${base}b.txt`, '4444');
        expect((await s.list(`${base}ab/`)).items.map((i) => i.key)).toEqual([`${base}ab/one.txt`, `${base}ab/two.txt`]);
        expect((await s.list(`${base}ab`)).items.map((i) => i.key).sort()).toEqual([`${base}ab/one.txt`, `${base}ab/two.txt`, `${base}abc.txt`].sort());
        const all = (await s.list(base)).items;
        expect(all).toHaveLength(4);
        expect(all.find((i) => i.key === `${base}b.txt`)?.size).toBe(4);
        expect((await s.list(k('nothing-here/'))).items).toEqual([]);
      });
      it(
        'lists every key once, in key order by UTF-8 bytes across pages (unless it declares sortedListing: false)',
        async () => {
          const prefix = k('order/');
          // Where UTF-16 order (JavaScript's `<`) and UTF-8 byte order disagree: characters above
          // U+FFFF against U+E000-U+FFFF; and where a folder's "/" sorts after "-", "." and " ".
          const names = [
            'a.txt',
            'a-b.txt',
            'a b.txt',
            'a/x.txt',
            'a0.txt',
            'B.txt',
            'b.txt',
            '\u00e9.txt',
            '\uff21.txt',
            '\ue000.txt',
            '\u{1f600}.txt',
            '\u{10000}.txt',
            '\uffee/y.txt',
            '\u{1f600}/z.txt',
          ];
          const keys = names.map((n) => `${prefix}${n}`);
          await forEachConcurrent(keys, 8, async (key) => {
            await s.save(key, 'x');
          });
          const utf8Order = [...keys].sort((x, y) => Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8')));
          const paged: string[] = [];
          let cursor: string | undefined;
          do {
            const page = await s.list(prefix, { cursor, limit: 3 });
            paged.push(...page.items.map((i) => i.key));
            cursor = page.cursor;
          } while (cursor);
          const all: string[] = [];
          for await (const info of s.listAll(prefix, { pageSize: 4 })) all.push(info.key);
          if ((declared?.sortedListing ?? caps.sortedListing) === false) {
            expect(new Set(paged).size).toBe(paged.length);
            expect([...paged].sort()).toEqual([...keys].sort());
            expect([...all].sort()).toEqual([...keys].sort());
            return;
          }
          expect(paged).toEqual(utf8Order);
          expect(all).toEqual(utf8Order);
          // A name prefix inside a folder name keeps that order too.
          expect((await s.list(`${prefix}a`)).items.map((i) => i.key)).toEqual(utf8Order.filter((key) => key.startsWith(`${prefix}a`)));
        },
        slow,
      );
      itWith('listingAnswersExists', 'a listing of a prefix shows exactly the keys exists() finds under it', async () => {
        const prefix = k('listed/');
        const stored = ['p1.jpg', 'p2.jpg', 'sub/p3.jpg', 'gone.jpg'].map((n) => `${prefix}${n}`);
        for (const key of stored) await s.save(key, PNG_1PX);
        await s.delete(`${prefix}gone.jpg`);
        await s.save(`${prefix}p2.jpg`, PNG_1PX);
        const listed: string[] = [];
        for await (const info of s.listAll(prefix)) listed.push(info.key);
        const found: string[] = [];
        for (const key of [...stored, `${prefix}never.jpg`]) if (await s.exists(key)) found.push(key);
        expect(listed).toEqual(found.sort((x, y) => Buffer.compare(Buffer.from(x), Buffer.from(y))));
      });
    });

    describe('copy', () => {
      it('copies bytes and leaves the source', async () => {
        const from = k('source.png');
        const to = k('copies/target.png');
        await s.save(from, PNG_1PX);
        const info = await s.copy(from, to);
        expect(info.key).toBe(to);
        expect(info.size).toBe(PNG_1PX.length);
        expect((await s.readBuffer(to)).equals(PNG_1PX)).toBe(true);
        expect(await s.exists(from)).toBe(true);
      });
      it('copy with ifExists "fail" refuses to replace', async () => {
        const from = k('c1.txt');
        const to = k('c2.txt');
        await s.save(from, 'one');
        await s.save(to, 'two');
        expect(await codeOf(s.copy(from, to, { ifExists: 'fail' }))).toBe('ALREADY_EXISTS');
        expect((await s.readBuffer(to)).toString()).toBe('two');
      });
    });

    describe('range reads', () => {
      const data = Buffer.from('0123456789abcdefghij');
      itWith('rangeReads', 'reads a byte range, and from an offset to the end', async () => {
        const key = k('range.txt');
        await s.save(key, data);
        expect((await s.readBuffer(key, { range: { start: 2, end: 5 } })).toString()).toBe('2345');
        expect((await s.readBuffer(key, { range: { start: 15 } })).toString()).toBe('fghij');
        expect((await s.readBuffer(key, { range: { start: 18, end: 100 } })).toString()).toBe('ij');
      });
      it('rejects a malformed range with INVALID_INPUT', async () => {
        const key = k('range-bad.txt');
        await s.save(key, data);
        expect(await codeOf(s.read(key, { range: { start: 5, end: 2 } }))).toBe('INVALID_INPUT');
        expect(await codeOf(s.read(key, { range: { start: -1 } }))).toBe('INVALID_INPUT');
      });
    });

    describe('keys', () => {
      for (const special of SPECIAL_KEYS) {
        it(`round-trips the key ${JSON.stringify(special)} through save, list and url`, async () => {
          const prefix = k('special/');
          const key = `${prefix}${special}`;
          const body = Buffer.from(`content of ${special}`);
          const info = await s.save(key, body);
          // Keys are byte-exact: the key comes back as given, in whatever Unicode form it was.
          const stored = key;
          expect(info.key).toBe(stored);
          expect(await s.exists(stored)).toBe(true);
          expect((await s.readBuffer(key)).equals(body)).toBe(true);
          expect((await s.list(prefix)).items.map((i) => i.key)).toEqual([stored]);
          if (has('publicUrls') || has('signedUrls')) {
            const url = await s.url(stored, has('publicUrls') ? {} : { expiresIn: 300 });
            const res = await httpFetch(url);
            expect(res.status).toBe(200);
            expect(Buffer.from(await res.arrayBuffer()).equals(body)).toBe(true);
          }
        });
      }
      it('keeps NFD and NFC spellings as two keys: an operation on one never reads, replaces or deletes the other', async () => {
        const prefix = k('twins/');
        const nfc = `${prefix}caf\u00e9.txt`;
        const nfd = `${prefix}cafe\u0301.txt`;
        await s.save(nfd, 'decomposed');
        // Only the decomposed one exists so far: its composed spelling names nothing.
        expect(await s.exists(nfc)).toBe(false);
        expect(await codeOf(s.stat(nfc))).toBe('NOT_FOUND');
        await s.delete(nfc);
        expect((await s.readBuffer(nfd)).toString()).toBe('decomposed');
        let both = true;
        try {
          await s.save(nfc, 'composed');
        } catch (err) {
          // A store that cannot hold both (a file system that folds normalisation, like APFS)
          // refuses the second one, and keeps the first untouched.
          expect(isMediaStorageError(err) && err.code === 'ALREADY_EXISTS', String(err)).toBe(true);
          both = false;
        }
        expect((await s.readBuffer(nfd)).toString()).toBe('decomposed');
        if (!both) {
          expect(await s.exists(nfc)).toBe(false);
          return;
        }
        expect((await s.readBuffer(nfc)).toString()).toBe('composed');
        expect((await s.list(prefix)).items.map((i) => i.key).sort()).toEqual([nfc, nfd].sort());
        await s.save(nfc, 'composed again');
        expect((await s.readBuffer(nfd)).toString()).toBe('decomposed');
        await s.delete(nfd);
        expect(await s.exists(nfd)).toBe(false);
        expect((await s.readBuffer(nfc)).toString()).toBe('composed again');
      });
      it(
        'rejects hostile keys with INVALID_KEY in every operation, storing nothing',
        async () => {
          const hostile = [...HOSTILE_KEYS, ...(options.extraHostileKeys ?? [])];
          for (const key of hostile) {
            const ops: Array<[string, () => Promise<unknown>]> = [
              ['save', () => s.save(key, 'pwned', { allowEmpty: true })],
              ['read', () => s.read(key)],
              ['exists', () => s.exists(key)],
              ['stat', () => s.stat(key)],
              ['delete', () => s.delete(key)],
              ['url', () => s.url(key)],
              ['copy from', () => s.copy(key, k('copy.txt'))],
              ['copy to', () => s.copy(k('copy.txt'), key)],
            ];
            for (const [op, fn] of ops) {
              const code = await codeOf(fn()).catch((err: Error) => `${err.message}`);
              expect(code, `${op}(${JSON.stringify(key)})`).toBe('INVALID_KEY');
            }
          }
        },
        slow,
      );
    });

    describe('odd keys: rejected or stored exactly', () => {
      const odd = options.rejectOrStoreKeys ?? [];
      it.skipIf(odd.length === 0)(
        `rejects with INVALID_KEY or round-trips each of ${odd.length} odd keys`,
        async () => {
          const failures: string[] = [];
          let stored = 0;
          for (const odd1 of odd) {
            const prefix = k('odd/');
            const key = `${prefix}${odd1}`;
            const body = Buffer.from(`body of ${JSON.stringify(odd1)}`);
            const label = JSON.stringify(odd1);
            let info;
            try {
              info = await s.save(key, body);
            } catch (err) {
              if (!isMediaStorageError(err) || err.code !== 'INVALID_KEY') {
                failures.push(`save(${label}) failed with ${isMediaStorageError(err) ? err.code : String(err)}, not INVALID_KEY`);
                continue;
              }
              // Rejected: every other operation must reject it too.
              for (const [op, fn] of [
                ['exists', () => s.exists(key)],
                ['stat', () => s.stat(key)],
                ['read', () => s.read(key)],
                ['delete', () => s.delete(key)],
                ['url', () => s.url(key)],
              ] as Array<[string, () => Promise<unknown>]>) {
                const code = await codeOf(fn()).catch((e: Error) => e.message);
                if (code !== 'INVALID_KEY') failures.push(`save rejected ${label} but ${op} gave ${code}`);
              }
              continue;
            }
            stored++;
            const exact = key; // keys are byte-exact
            if (info.key !== exact) failures.push(`save(${label}) answered key ${JSON.stringify(info.key)}`);
            if (!(await s.exists(exact))) failures.push(`exists(${label}) is false after save`);
            const back = await s.readBuffer(exact).catch((e: Error) => Buffer.from(`read failed: ${e.message}`));
            if (!back.equals(body)) failures.push(`readBuffer(${label}) gave other bytes: ${back.toString().slice(0, 80)}`);
            const listed = (await s.list(prefix)).items.map((i) => i.key);
            if (listed.length !== 1 || listed[0] !== exact) failures.push(`list under ${label} gave ${JSON.stringify(listed)}`);
            if (has('publicUrls') || has('signedUrls')) {
              const res = await httpFetch(await s.url(exact, has('publicUrls') ? {} : { expiresIn: 300 }));
              const served = Buffer.from(await res.arrayBuffer());
              if (res.status !== 200 || !served.equals(body)) failures.push(`url(${label}) served ${res.status} with other bytes`);
            }
            await s.delete(exact);
            if (await s.exists(exact)) failures.push(`${label} still exists after delete`);
          }
          expect(failures).toEqual([]);
          // Both outcomes are allowed; the count shows in the test's output for the reader.
          console.info(`${name}: ${stored} of ${odd.length} odd keys stored and read back exactly, ${odd.length - stored} rejected with INVALID_KEY`);
        },
        slow,
      );
    });

    describe('objects other software wrote', () => {
      /** `it` for the foreign-object tests: skipped, with the reason, when the factory gives no seeder. */
      const itForeign = (title: string, fn: (seed: SeedForeign) => Promise<void>, timeout?: number): void => {
        it(
          `${title} [seedForeign]`,
          async (ctx) => {
            if (!sut.seedForeign) {
              ctx.skip('the test factory gives no seedForeign');
              return;
            }
            await fn(sut.seedForeign);
          },
          timeout ?? slow,
        );
      };

      /**
       * Seeds every case; answers the names the native store held. A name in `required` must be
       * held; the others may be beyond what the store can hold (a folder marker on a file system,
       * `a//b` on B2, a key longer than the server stores), which is printed, not hidden.
       */
      const seedAll = async (seed: SeedForeign, cases: Array<[string, Buffer]>, required: ReadonlySet<string>): Promise<Map<string, Buffer>> => {
        const held = new Map<string, Buffer>();
        const left: string[] = [];
        for (const [foreign, body] of cases) {
          let answer: boolean | void;
          try {
            answer = await seed(foreign, body);
          } catch (err) {
            if (required.has(foreign)) throw err;
            left.push(`${JSON.stringify(shorten(foreign.slice(run.length)))} (${String(err).slice(0, 80)})`);
            continue;
          }
          if (answer === false) {
            if (required.has(foreign)) throw new Error(`seedForeign could not store ${JSON.stringify(foreign)}`);
            left.push(`${JSON.stringify(shorten(foreign.slice(run.length)))} (not an object there)`);
            continue;
          }
          held.set(foreign, body);
        }
        if (left.length > 0)
          console.info(`${name}: the native store cannot hold ${left.length} of the foreign names, so they are not tested here: ${left.join('; ')}`);
        return held;
      };

      const readAll = async (stream: Promise<Readable>): Promise<Buffer> => {
        const chunks: Buffer[] = [];
        for await (const chunk of await stream) chunks.push(Buffer.from(chunk as Buffer));
        return Buffer.concat(chunks);
      };

      /**
       * The invariant: every key `listAll(prefix)` gives is one that was stored, and exists, stat,
       * read, url (fetched) and copy work on it and give its own bytes. Answers the listed keys and
       * the problems found.
       */
      const checkListedKeys = async (prefix: string, stored: ReadonlyMap<string, Buffer>): Promise<{ listed: string[]; problems: string[] }> => {
        const listed: string[] = [];
        for await (const info of s.listAll(prefix)) listed.push(info.key);
        const problems: string[] = [];
        const copies = k('foreign-copies/');
        let n = 0;
        for (const key of listed) {
          const body = stored.get(key);
          const label = JSON.stringify(key.slice(prefix.length));
          if (!body) {
            problems.push(`list() gave ${label}, which is not a stored file`);
            continue;
          }
          const digest = sha256(body);
          const fail =
            (op: string) =>
            (err: unknown): undefined => {
              problems.push(`${op}(${label}) failed: ${isMediaStorageError(err) ? `${err.code} ${err.message}` : String(err)}`);
              return undefined;
            };
          if ((await s.exists(key).catch(fail('exists'))) !== true) problems.push(`exists(${label}) is not true`);
          const info = await s.stat(key).catch(fail('stat'));
          if (info && (info.key !== key || info.size !== body.length))
            problems.push(`stat(${label}) gave key ${JSON.stringify(info.key)} and size ${info.size}, not ${body.length}`);
          const read = await readAll(s.read(key)).catch(fail('read'));
          if (read && sha256(read) !== digest) problems.push(`read(${label}) gave other bytes (${read.length})`);
          if (has('publicUrls') || has('signedUrls')) {
            const url = await s.url(key, has('publicUrls') ? {} : { expiresIn: 300 }).catch(fail('url'));
            if (url) {
              const res = await httpFetch(url);
              const served = Buffer.from(await res.arrayBuffer());
              if (res.status !== 200 || sha256(served) !== digest) problems.push(`url(${label}) served ${res.status} with ${served.length} bytes`);
            }
          }
          const target = `${copies}${++n}.bin`;
          if (await s.copy(key, target).catch(fail('copy'))) {
            const copied = await readAll(s.read(target)).catch(fail('read of the copy'));
            if (copied && sha256(copied) !== digest) problems.push(`copy(${label}) wrote other bytes`);
            await s.delete(target);
          }
        }
        return { listed, problems };
      };

      itForeign('NFD and NFC twins written by other software are two objects, each usable by its own key and never by the other', async (seed) => {
        const prefix = k('foreign-twins/');
        const nfd = `${prefix}Jose\u0301.jpg`;
        const nfc = `${prefix}Jos\u00e9.jpg`;
        const folder = `${prefix}Rene\u0301e/photo.jpg`;
        const stored = await seedAll(
          seed,
          [
            [nfd, Buffer.from('decomposed, as macOS names files')],
            [nfc, Buffer.from('composed, as most keyboards type it')],
            [folder, Buffer.from('in a decomposed folder')],
          ],
          new Set([nfd, nfc, folder]),
        );
        const { listed, problems } = await checkListedKeys(prefix, stored);
        expect(problems).toEqual([]);
        expect(listed.sort()).toEqual([...stored.keys()].sort());
        // The folder's composed spelling names nothing.
        expect(await s.exists(`${prefix}Ren\u00e9e/photo.jpg`)).toBe(false);
        // A save to one twin leaves the other as it was; so does a delete.
        await s.save(nfc, 'replaced through the library');
        expect((await s.readBuffer(nfd)).toString()).toBe('decomposed, as macOS names files');
        await s.delete(nfd);
        expect(await s.exists(nfd)).toBe(false);
        expect((await s.readBuffer(nfc)).toString()).toBe('replaced through the library');
        expect((await s.list(prefix)).items.map((i) => i.key).sort()).toEqual([folder, nfc].sort());
      });

      itForeign('names that are not keys are left out of list() and reported in skipped, and every listed key works', async (seed) => {
        const prefix = k('foreign-odd/');
        const valid = [`${prefix}ok.jpg`, `${prefix}folder/inside.jpg`, `${prefix}.hidden`, `${prefix}a b+c%d.txt`];
        const marker = `${prefix}folder/`;
        const invalid = [
          marker,
          `${prefix}empty-folder/`,
          `${prefix}./dot.jpg`,
          `${prefix}/double.jpg`,
          `${prefix}a//b.jpg`,
          `${prefix}ctl\u0001.txt`,
          `${prefix}new\nline.txt`,
          `${prefix}bidi\u202egpj.exe`,
          `${prefix}${'s'.repeat(300)}.txt`,
          `${prefix}${`${'d'.repeat(200)}/`.repeat(5)}deep.txt`,
        ];
        const body = (n: string): Buffer => (n.endsWith('/') ? Buffer.alloc(0) : Buffer.from(`bytes of ${JSON.stringify(n)}`));
        const stored = await seedAll(
          seed,
          [...valid, ...invalid].map((n) => [n, body(n)] as [string, Buffer]),
          new Set(valid.slice(0, 2)),
        );
        const storedInvalid = invalid.filter((n) => stored.has(n));
        const files = new Map([...stored].filter(([n]) => valid.includes(n)));
        // Without an odd name to screen, the test would prove nothing about skipping.
        expect(storedInvalid.length, 'seedForeign stored none of the odd names').toBeGreaterThan(0);

        const skipped: SkippedObject[] = [];
        const listed: string[] = [];
        for await (const info of s.listAll(prefix, { onSkipped: (object) => skipped.push(object) })) listed.push(info.key);
        const reported = (n: string): SkippedObject | undefined => skipped.find((o) => o.name === n);
        // A file with a valid name is listed, unless the backend cannot map it back to a key at all
        // (Cloudinary: a public ID its mapping never writes), and then it is reported as unmapped.
        for (const n of files.keys()) {
          if (!listed.includes(n)) expect(reported(n)?.reason, `${JSON.stringify(n)} is neither listed nor reported as unmapped`).toBe('unmapped');
        }
        for (const n of listed) expect(files.has(n), `list() gave ${JSON.stringify(n)}, which was not stored as a file`).toBe(true);
        for (const n of storedInvalid) {
          const report = reported(n);
          expect(report, `${JSON.stringify(n)} is neither listed nor reported as skipped`).toBeDefined();
          expect([n.endsWith('/') ? 'folder-marker' : 'invalid-key', 'unmapped'], JSON.stringify(n)).toContain(report!.reason);
          expect(report!.message.length).toBeGreaterThan(0);
        }
        for (const object of skipped) expect(listed.includes(object.name), `${JSON.stringify(object.name)} is both listed and skipped`).toBe(false);
        // Page by page, with one object a page, cursors go past skipped objects to the same result.
        const paged: string[] = [];
        const pagedSkipped: string[] = [];
        let cursor: string | undefined;
        let pages = 0;
        do {
          const page = await s.list(prefix, { cursor, limit: 1 });
          paged.push(...page.items.map((i) => i.key));
          pagedSkipped.push(...(page.skipped ?? []).map((o) => o.name));
          cursor = page.cursor;
        } while (cursor && ++pages < 100);
        expect(paged.sort()).toEqual(listed.sort());
        expect(pagedSkipped.sort()).toEqual(skipped.map((o) => o.name).sort());
        // The tools can rely on it: a name skipped as not a key is refused by every per-key call,
        // not half-served (an unmapped one is a key that names nothing: NOT_FOUND).
        for (const object of skipped)
          expect(object.reason === 'unmapped' ? ['NOT_FOUND', 'INVALID_KEY'] : ['INVALID_KEY'], JSON.stringify(object.name)).toContain(
            await codeOf(s.stat(object.name)),
          );

        const { problems } = await checkListedKeys(prefix, files);
        expect(problems).toEqual([]);
        for (const key of listed) await s.delete(key);
        expect((await s.list(prefix)).items).toEqual([]);
      });

      const largeBytes = options.foreignLargeObjectBytes ?? 30_000_000;
      it.skipIf(largeBytes === 0)(
        `a ${(largeBytes / 1e6).toFixed(0)} MB object another client uploaded in parts is listed, read, served and copied byte-exact [seedForeign]`,
        async (ctx) => {
          if (!sut.seedForeign) {
            ctx.skip('the test factory gives no seedForeign');
            return;
          }
          const prefix = k('foreign-large/');
          const key = `${prefix}video.mp4`;
          const data = randomBytes(largeBytes);
          await sut.seedForeign(key, data, { contentType: 'video/mp4' });
          const { listed, problems } = await checkListedKeys(prefix, new Map([[key, data]]));
          expect(problems).toEqual([]);
          expect(listed).toEqual([key]);
          if (has('rangeReads')) {
            const tail = await s.readBuffer(key, { range: { start: largeBytes - 100 } });
            expect(tail.equals(data.subarray(largeBytes - 100))).toBe(true);
          }
          await s.delete(key);
          expect(await s.exists(key)).toBe(false);
        },
        Math.max(slow, 300_000),
      );

      it('metadata other software wrote (non-ASCII as S3 and its console encode it) reads back as meant [capability metadata] [seedForeign]', async (ctx) => {
        if (!has('metadata') || !sut.seedForeign) {
          ctx.skip(!has('metadata') ? 'backend does not declare metadata' : 'the test factory gives no seedForeign');
          return;
        }
        const key = k('foreign-meta.txt');
        const meant = { 'uploaded-by': 'Jos\u00e9', note: '\u65e5\u672c\u8a9e', plain: 'agent-7' };
        await sut.seedForeign(key, Buffer.from('with metadata'), { metadata: meant });
        expect((await s.stat(key)).metadata).toMatchObject(meant);
      });
    });

    describe('bodies that lie, are empty, or are too large', () => {
      for (const lying of LYING_BODIES) {
        it(`stores ${lying.name} (really ${lying.really}) truthfully and serves it safely, or refuses it`, async () => {
          const key = k(lying.name);
          let stored: Awaited<ReturnType<MediaStorage['save']>>;
          try {
            stored = await s.save(key, lying.body, lying.contentType ? { contentType: lying.contentType } : {});
          } catch (err) {
            // A backend may refuse active content, with a typed error and nothing stored.
            expect(isMediaStorageError(err) && ['INVALID_INPUT', 'UNSUPPORTED'].includes(err.code), String(err)).toBe(true);
            expect(await s.exists(key)).toBe(false);
            return;
          }
          const types = [stored.contentType, (await s.stat(key)).contentType];
          if (lying.really === 'markup') for (const t of types) expect(t).not.toMatch(/^image\/(?!svg\+xml)/);
          else for (const t of types) expect(isActiveContent(t), t).toBe(false);
          if (!(has('publicUrls') || has('signedUrls'))) return;
          const res = await httpFetch(await s.url(key, has('publicUrls') ? {} : { expiresIn: 300 }));
          expect(res.status).toBe(200);
          const served = res.headers.get('content-type') ?? '';
          await res.arrayBuffer();
          if (lying.really === 'markup') expect(served).not.toMatch(/^image\/(?!svg\+xml)/);
          else expect(isActiveContent(served), served).toBe(false);
          if (isActiveContent(served)) {
            // Active content runs in the storage's origin unless it is downloaded or sandboxed.
            const disposition = res.headers.get('content-disposition') ?? '';
            const csp = res.headers.get('content-security-policy') ?? '';
            expect(/^attachment/i.test(disposition) || /\bsandbox\b/.test(csp), `${served} served inline without a sandbox`).toBe(true);
          }
        });
      }

      const empties: Array<[string, () => unknown]> = [
        ['string', () => ''],
        ['Uint8Array', () => new Uint8Array(0)],
        ['Blob', () => new Blob([])],
        ['web ReadableStream', () => new ReadableStream<Uint8Array>({ start: (c) => c.close() })],
        ['stream of empty chunks', () => Readable.from([Buffer.alloc(0), Buffer.alloc(0)])],
      ];
      it('rejects every kind of zero-byte body with INVALID_INPUT and stores nothing', async () => {
        for (const [label, make] of empties) {
          const key = k(`empty-${label.replace(/\W+/g, '-')}.bin`);
          expect(await codeOf(s.save(key, make() as never)), label).toBe('INVALID_INPUT');
          expect(await s.exists(key), label).toBe(false);
        }
      });

      it('rejects every kind of over-limit body with TOO_LARGE and stores nothing', async () => {
        const overs: Array<[string, () => unknown, number]> = [
          // 600 characters but 1,200 UTF-8 bytes: the limit is in bytes.
          ['multi-byte string', () => 'é'.repeat(600), 1000],
          ['Uint8Array', () => new Uint8Array(1001), 1000],
          ['Blob', () => new Blob([Buffer.alloc(1001, 1)]), 1000],
          [
            'web ReadableStream',
            () => new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new Uint8Array(600).fill(1)), c.enqueue(new Uint8Array(600).fill(2)), c.close()) }),
            1000,
          ],
          ['one byte over a zero limit', () => Buffer.from('x'), 0],
        ];
        for (const [label, make, maxSize] of overs) {
          const key = k(`over-${label.replace(/\W+/g, '-')}.bin`);
          expect(await codeOf(s.save(key, make() as never, { maxSize })), label).toBe('TOO_LARGE');
          expect(await s.exists(key), label).toBe(false);
        }
      });
    });

    describe('aborts, limits and broken bodies', () => {
      it('an already-aborted signal stores nothing and gives ABORTED', async () => {
        const key = k('pre-aborted.txt');
        const controller = new AbortController();
        controller.abort();
        expect(await codeOf(s.save(key, 'never', { signal: controller.signal }))).toBe('ABORTED');
        expect(await s.exists(key)).toBe(false);
      });
      it('aborting mid-stream leaves nothing under the key, and an old object intact', async () => {
        const fresh = k('aborted.bin');
        const existing = k('aborted-existing.bin');
        await s.save(existing, 'the old version');
        for (const key of [fresh, existing]) {
          const controller = new AbortController();
          const promise = s.save(key, slowStream(200, 16 * 1024), {
            signal: controller.signal,
            onProgress: (p) => {
              if (p.loaded >= 64 * 1024) controller.abort();
            },
          });
          expect(await codeOf(promise)).toBe('ABORTED');
        }
        expect(await s.exists(fresh)).toBe(false);
        expect((await s.readBuffer(existing)).toString()).toBe('the old version');
      });
      it('aborting a save whose body stalls gives ABORTED promptly and stores nothing', async () => {
        const key = k('stalled.bin');
        let sent = false;
        const stalling = new Readable({
          read() {
            if (!sent) {
              sent = true;
              this.push(Buffer.alloc(64 * 1024, 0x63));
            }
          },
        });
        const controller = new AbortController();
        const promise = s.save(key, stalling, { signal: controller.signal });
        setTimeout(() => controller.abort(), 50);
        expect(await codeOf(promise)).toBe('ABORTED');
        expect(stalling.destroyed).toBe(true);
        expect(await s.exists(key)).toBe(false);
      });
      it('a body larger than maxSize gives TOO_LARGE and stores nothing (buffer and stream)', async () => {
        const a = k('big-buffer.bin');
        const b = k('big-stream.bin');
        expect(await codeOf(s.save(a, Buffer.alloc(2048), { maxSize: 1024 }))).toBe('TOO_LARGE');
        expect(await codeOf(s.save(b, slowStream(40, 1024), { maxSize: 10 * 1024 }))).toBe('TOO_LARGE');
        expect(await s.exists(a)).toBe(false);
        expect(await s.exists(b)).toBe(false);
        const exact = k('exact.bin');
        await s.save(exact, Buffer.alloc(1024, 1), { maxSize: 1024 });
        expect((await s.stat(exact)).size).toBe(1024);
      });
      it('a body stream that fails midway gives INVALID_INPUT and stores nothing', async () => {
        const fresh = k('broken.bin');
        const existing = k('broken-existing.bin');
        await s.save(existing, 'intact');
        expect(await codeOf(s.save(fresh, failingStream(100_000)))).toBe('INVALID_INPUT');
        expect(await codeOf(s.save(existing, failingStream(100_000)))).toBe('INVALID_INPUT');
        expect(await s.exists(fresh)).toBe(false);
        expect((await s.readBuffer(existing)).toString()).toBe('intact');
      });
      it('rejects a body of an unsupported type with INVALID_INPUT', async () => {
        expect(await codeOf(s.save(k('weird.txt'), 42 as never))).toBe('INVALID_INPUT');
        expect(await codeOf(s.save(k('weird2.txt'), null as never))).toBe('INVALID_INPUT');
      });
    });

    describe('concurrency', () => {
      const contend = async (withReader: boolean): Promise<void> => {
        const key = k('contended.bin');
        const n = options.concurrentSavesOneKey ?? 16;
        // Writer i's body: 64 KiB + i bytes, every byte (i % 255) + 1, so a read tells whose it is and whether it is whole.
        const bodies = Array.from({ length: n }, (_, i) => Buffer.alloc(64 * 1024 + i, (i % 255) + 1));
        const whole = (data: Buffer): boolean => {
          const i = data.length - 64 * 1024;
          return i >= 0 && i < n && data.every((b) => b === (i % 255) + 1);
        };
        let writing = true;
        const torn: string[] = [];
        const reader = (async () => {
          while (withReader && writing) {
            try {
              const data = await s.readBuffer(key);
              if (!whole(data)) torn.push(`read ${data.length} bytes that are no writer's whole body`);
            } catch (err) {
              if (!isNotFound(err)) torn.push(`read failed: ${String(err)}`);
            }
            // A miss may settle in microtasks alone; let the writers' I/O run between reads.
            await new Promise((resolve) => setImmediate(resolve));
          }
        })();
        await Promise.all(bodies.map((b) => s.save(key, b))).finally(() => {
          writing = false;
        });
        await reader;
        expect(torn).toEqual([]);
        const back = await s.readBuffer(key);
        expect(whole(back)).toBe(true);
        expect(bodies.some((b) => b.equals(back))).toBe(true);
        expect((await s.stat(key)).size).toBe(back.length);
      };
      const readsNote = options.checkReadsDuringWrites === false ? ' [skipped: the server under test is declared to write in place]' : '';
      it.skipIf(options.checkReadsDuringWrites === false)(`concurrent saves to one key leave one whole version${readsNote}`, () => contend(false), slow);
      it.skipIf(options.checkReadsDuringWrites === false)(
        `reads during concurrent saves to one key see whole versions only${readsNote}`,
        () => contend(true),
        slow,
      );
      it(
        'concurrent saves to distinct keys all land whole',
        async () => {
          const n = options.concurrentSavesDistinctKeys ?? 64;
          const prefix = k('distinct/');
          const keys = Array.from({ length: n }, (_, i) => `${prefix}${i}.bin`);
          await Promise.all(keys.map((key, i) => s.save(key, Buffer.alloc(1000 + i, i % 251))));
          await forEachConcurrent(keys, 64, async (key, i) => {
            const back = await s.readBuffer(key);
            expect(back.length).toBe(1000 + i);
            expect(back.every((b) => b === i % 251)).toBe(true);
          });
        },
        slow,
      );
    });

    describe('direct uploads', () => {
      // What a browser does with presignUpload's answer, sent over HTTP (fetch, FormData), then
      // read back through the storage. The enforcement tests run where the backend says its
      // store enforces that rule (`enforced`), and prove the store refuses, storing nothing.
      const presign = (key: string, opts?: Parameters<NonNullable<MediaStorage['presignUpload']>>[1]): Promise<DirectUpload> => {
        if (typeof s.presignUpload !== 'function') throw new Error(`${s.name} declares directUploads but has no presignUpload method`);
        return s.presignUpload(key, opts);
      };
      const send = (upload: DirectUpload, bytes: Buffer, opts: { contentType?: string } = {}): Promise<Response> =>
        sendDirectUpload(upload, bytes, { fetch: (url, init) => httpFetch(url, init), ...opts });
      const refusedAndNothingStored = async (res: Response, ...keys: string[]): Promise<void> => {
        await res.arrayBuffer();
        expect(res.status, `the store accepted it (${res.status})`).toBeGreaterThanOrEqual(400);
        for (const key of keys) expect(await s.exists(key), `something was stored under ${key}`).toBe(false);
      };
      const enforcing = (rule: keyof DirectUploadEnforcement, upload: DirectUpload, ctx: { skip: (note?: string) => void }): boolean => {
        if (options.checkDirectUploadEnforcement === false) {
          ctx.skip('the server under test is declared not to check signatures');
          return false;
        }
        if (!upload.enforced[rule]) {
          ctx.skip(`${s.name} does not enforce ${rule} in direct uploads (enforced.${rule} is false): only the browser is asked to`);
          return false;
        }
        return true;
      };

      itWith('directUploads', 'a file sent with the presigned request is stored under its key, byte-exact, with the decided type', async () => {
        const key = k('direct.png');
        const upload = await presign(key, { contentType: 'image/png', expiresIn: 300 });
        expect(upload.key).toBe(key);
        expect(upload.contentType).toBe('image/png');
        expect(['PUT', 'POST']).toContain(upload.method);
        expect(upload.expiresAt.getTime()).toBeGreaterThan(Date.now());
        expect(await s.exists(key)).toBe(false);
        const res = await send(upload, PNG_1PX);
        const text = await res.text();
        expect(res.status, text).toBeLessThan(300);
        expect((await s.readBuffer(key)).equals(PNG_1PX)).toBe(true);
        expect((await s.stat(key)).contentType.split(';')[0]).toBe('image/png');
        if (!(has('publicUrls') || has('signedUrls'))) return;
        const served = await httpFetch(await s.url(key, has('publicUrls') ? {} : { expiresIn: 300 }));
        expect(served.status).toBe(200);
        expect(served.headers.get('content-type')?.split(';')[0]).toBe('image/png');
        expect(Buffer.from(await served.arrayBuffer()).equals(PNG_1PX)).toBe(true);
      });

      itWith('directUploads', 'a second upload with a fresh request replaces the object', async () => {
        const key = k('direct-again.png');
        await s.save(key, PNG_1PX);
        const bigger = Buffer.concat([PNG_1PX, Buffer.alloc(100, 1)]);
        const res = await send(await presign(key, { contentType: 'image/png' }), bigger);
        expect(res.status, await res.text()).toBeLessThan(300);
        expect((await s.readBuffer(key)).equals(bigger)).toBe(true);
      });

      itWith('directUploads', 'the request cannot store under another key [where enforced.key]', async (ctx) => {
        const key = k('mine.png');
        const other = k('theirs.png');
        const upload = await presign(key, { contentType: 'image/png', expiresIn: 300 });
        if (!enforcing('key', upload, ctx)) return;
        // The key's name, as the request carries it (a URL path, a form field, a public ID without its extension).
        const name = key.slice(key.lastIndexOf('/') + 1);
        const otherName = other.slice(other.lastIndexOf('/') + 1);
        const forge = (text: string): string =>
          text
            .split(name)
            .join(otherName)
            .split(name.replace(/\.png$/, ''))
            .join(otherName.replace(/\.png$/, ''));
        const forged: DirectUpload = {
          ...upload,
          url: forge(upload.url),
          headers: Object.fromEntries(Object.entries(upload.headers).map(([h, v]) => [h, forge(v)])),
          ...(upload.fields ? { fields: Object.fromEntries(Object.entries(upload.fields).map(([f, v]) => [f, forge(v)])) } : {}),
        };
        expect(JSON.stringify(forged), 'the request does not name the key').not.toBe(JSON.stringify(upload));
        await refusedAndNothingStored(await send(forged, PNG_1PX), other, key);
      });

      itWith('directUploads', 'a file of another type is refused [where enforced.contentType]', async (ctx) => {
        const key = k('typed.png');
        const upload = await presign(key, { contentType: 'image/png', expiresIn: 300 });
        if (!enforcing('contentType', upload, ctx)) return;
        await refusedAndNothingStored(await send(upload, Buffer.from('<html><script>alert(1)</script></html>'), { contentType: 'text/html' }), key);
      });

      itWith('directUploads', 'a file over maxSize is refused, and one of maxSize bytes is stored [where enforced.maxSize]', async (ctx) => {
        const key = k('capped.png');
        const upload = await presign(key, { contentType: 'image/png', maxSize: 1000, expiresIn: 300 });
        if (!enforcing('maxSize', upload, ctx)) return;
        const padded = (size: number): Buffer => Buffer.concat([PNG_1PX, Buffer.alloc(size - PNG_1PX.length, 0)]);
        await refusedAndNothingStored(await send(upload, padded(1001)), key);
        const res = await send(await presign(key, { contentType: 'image/png', maxSize: 1000, expiresIn: 300 }), padded(1000));
        expect(res.status, await res.text()).toBeLessThan(300);
        expect((await s.stat(key)).size).toBe(1000);
      });

      itWith('directUploads', 'an expired request is refused [where enforced.expiry]', async (ctx) => {
        const key = k('late.png');
        const upload = await presign(key, { contentType: 'image/png', expiresIn: 1 });
        if (!enforcing('expiry', upload, ctx)) return;
        expect(upload.expiresAt.getTime() - Date.now()).toBeLessThanOrEqual(2000);
        // Stores count in whole seconds: wait until the expiry is well past.
        await new Promise((resolve) => setTimeout(resolve, Math.max(0, upload.expiresAt.getTime() - Date.now()) + 1500));
        await refusedAndNothingStored(await send(upload, PNG_1PX), key);
      });

      itWith('directUploads', 'presignUpload checks the key and its options before signing anything', async () => {
        const max = caps.maxUploadExpiresIn ?? caps.maxExpiresIn ?? DEFAULT_MAX_EXPIRES_IN;
        expect(await codeOf(presign('../escape.png'))).toBe('INVALID_KEY');
        expect(await codeOf(presign('a//b.png'))).toBe('INVALID_KEY');
        for (const expiresIn of [0, -1, 1.5, max + 1, Number.NaN])
          expect(await codeOf(presign(k('x.png'), { expiresIn })), String(expiresIn)).toBe('INVALID_INPUT');
        for (const maxSize of [0, -1, 2.5]) expect(await codeOf(presign(k('x.png'), { maxSize })), String(maxSize)).toBe('INVALID_INPUT');
        expect(await codeOf(presign(k('x.png'), { contentType: 'image/png\r\nX-Injected: 1' }))).toBe('INVALID_INPUT');
        await expect(presign(k('longest.png'), { expiresIn: max })).resolves.toMatchObject({ method: expect.stringMatching(/^(PUT|POST)$/) });
      });

      itWith('directUploads', 'an executable kind is presigned under a type no browser runs, or refused', async () => {
        let upload: DirectUpload;
        try {
          upload = await presign(k('page.html'), { contentType: 'text/html' });
        } catch (err) {
          expect(isMediaStorageError(err) && ['INVALID_INPUT', 'UNSUPPORTED'].includes(err.code), String(err)).toBe(true);
          return;
        }
        expect(isExecutableContentType(upload.contentType), upload.contentType).toBe(false);
      });

      it('without directUploads, presignUpload is UNSUPPORTED', async (ctx) => {
        if (has('directUploads')) {
          ctx.skip('backend declares directUploads');
          return;
        }
        if (typeof s.presignUpload !== 'function') return;
        expect(await codeOf(s.presignUpload(k('x.png')))).toBe('UNSUPPORTED');
      });
    });

    describe('urls over HTTP', () => {
      itWith('publicUrls', 'a public URL serves the bytes with the content type', async () => {
        const key = k('public.png');
        await s.save(key, PNG_1PX);
        const res = await httpFetch(await s.url(key));
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')?.split(';')[0]).toBe('image/png');
        expect(Buffer.from(await res.arrayBuffer()).equals(PNG_1PX)).toBe(true);
      });
      itWith('signedUrls', 'a signed URL serves the bytes until it expires', async () => {
        const key = k('signed.png');
        await s.save(key, PNG_1PX);
        const url = await s.url(key, { expiresIn: 120 });
        const res = await httpFetch(url);
        expect(res.status).toBe(200);
        expect(Buffer.from(await res.arrayBuffer()).equals(PNG_1PX)).toBe(true);
      });
      itWith('signedUrls', 'a tampered signed URL is refused', async () => {
        const key = k('tamper.png');
        const other = k('tamper-other.png');
        await s.save(key, PNG_1PX);
        await s.save(other, PNG_1PX);
        const url = await s.url(key, { expiresIn: 120 });
        // Same signature, another object: the signature must bind the key. A URL names the object
        // by its file name, or (stores that keep the extension apart, like Cloudinary's public ID
        // plus format) by the name without its extension; forge whichever this URL contains.
        const name = key.slice(key.lastIndexOf('/') + 1);
        const otherName = other.slice(other.lastIndexOf('/') + 1);
        const stem = (n: string): string => n.slice(0, n.lastIndexOf('.'));
        const forms: Array<[string, string]> = [
          [encodeURIComponent(name), encodeURIComponent(otherName)],
          [encodeURIComponent(stem(name)), encodeURIComponent(stem(otherName))],
        ];
        const form = forms.find(([mine]) => url.includes(mine));
        expect(form, `the signed URL ${url} does not name the object`).toBeDefined();
        const forged = url.replace(form![0], form![1]);
        expect(forged).not.toBe(url);
        const res = await httpFetch(forged);
        expect(res.status).toBeGreaterThanOrEqual(400);
        await res.arrayBuffer();
      });
      itWith('downloadUrls', 'a download URL asks for an attachment', async () => {
        const key = k('report.txt');
        await s.save(key, 'download me');
        const url = await s.url(key, { download: 'my report.txt', ...(has('publicUrls') ? {} : { expiresIn: 120 }) });
        const res = await httpFetch(url);
        expect(res.status).toBe(200);
        expect(res.headers.get('content-disposition') ?? '').toMatch(/^attachment/);
        expect(await res.text()).toBe('download me');
      });
      it('url() of a missing key still gives a URL (it does not check existence)', async () => {
        await expect(s.url(k('not-yet.png'), has('publicUrls') ? {} : { expiresIn: 60 })).resolves.toMatch(/./);
      });
      it('rejects a non-positive expiresIn with INVALID_INPUT', async () => {
        expect(await codeOf(s.url(k('x.png'), { expiresIn: 0 }))).toBe('INVALID_INPUT');
        expect(await codeOf(s.url(k('x.png'), { expiresIn: -5 }))).toBe('INVALID_INPUT');
      });
    });
  });
}
