// The multer engine under a real Express app, driven by a real HTTP client (fetch + FormData):
// a storage failure reaches the app's error handler as the MediaStorageError itself, so the app
// can answer 413 for TOO_LARGE (issue 12, point 6).
import express, { type ErrorRequestHandler } from 'express';
import multer from 'multer';
import { afterEach, describe, expect, it } from 'vitest';
import { isMediaStorageError, MediaStorageError } from '../../src/core/errors.js';
import type { PreparedBody } from '../../src/core/body.js';
import type { ObjectInfo } from '../../src/core/types.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { mediaStorageEngine, type MediaStorageEngineOptions } from '../../src/multer/index.js';
import { listen } from '../support/http.js';
import { makePng } from '../support/png.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

interface Seen {
  name?: string;
  code?: string;
  isMediaStorageError?: boolean;
  instanceOf?: boolean;
}

/** An Express app with one upload route and an error handler that answers by MediaStorageError code, as an app would. */
async function app(engine: MediaStorageEngineOptions, seen: Seen[] = []): Promise<string> {
  const upload = multer({ storage: mediaStorageEngine(engine) });
  const server = express();
  server.post('/photo', upload.single('photo'), (req, res) => {
    res.json({ key: (req.file as unknown as { key: string }).key });
  });
  const onError: ErrorRequestHandler = (err, _req, res, _next) => {
    seen.push({ name: err?.name, code: err?.code, isMediaStorageError: isMediaStorageError(err), instanceOf: err instanceof MediaStorageError });
    const status = isMediaStorageError(err)
      ? (({ TOO_LARGE: 413, INVALID_KEY: 400, INVALID_INPUT: 400, UNAVAILABLE: 503 } as Record<string, number>)[err.code] ?? 500)
      : 500;
    res.status(status).json({ code: err?.code, message: err?.message });
  };
  server.use(onError);
  const { url, close } = await listen(server);
  closers.push(close);
  return url;
}

function form(bytes: Uint8Array, filename = 'photo.png'): FormData {
  const body = new FormData();
  body.append('name', 'Ada');
  body.append('photo', new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'image/png' }), filename);
  return body;
}

describe('mediaStorageEngine under Express', () => {
  it('hands TOO_LARGE to the error handler as itself, so the app answers 413, and stores nothing', async () => {
    const storage = new MemoryStorage();
    const seen: Seen[] = [];
    const url = await app({ storage, save: { maxSize: 100 * 1024 } }, seen);
    // Several MB: the storage gives up long before busboy has delivered the file.
    const big = new Uint8Array(4 * 1024 * 1024);
    big.set(makePng(8, 8));
    const started = Date.now();
    const res = await fetch(`${url}/photo`, { method: 'POST', body: form(big) });
    expect(res.status).toBe(413);
    expect(await res.json()).toMatchObject({ code: 'TOO_LARGE', message: expect.stringContaining('larger than the limit of 102400 bytes') });
    expect(seen).toEqual([{ name: 'MediaStorageError', code: 'TOO_LARGE', isMediaStorageError: true, instanceOf: true }]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(storage.size).toBe(0);
  });

  it('hands every MediaStorageError on as itself: a key that breaks the rules, a failing backend', async () => {
    const seen: Seen[] = [];
    const badKey = await app({ storage: new MemoryStorage(), key: () => '../escape.png' }, seen);
    const res = await fetch(`${badKey}/photo`, { method: 'POST', body: form(makePng(4, 4)) });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'INVALID_KEY' });

    class Down extends MemoryStorage {
      // A backend whose connection breaks after the first chunk of the body.
      protected override async writeObject(key: string, body: PreparedBody): Promise<ObjectInfo> {
        const stream = body.stream();
        await new Promise((resolve) => stream.once('data', resolve));
        stream.destroy();
        throw Object.assign(new Error(`connect ECONNRESET while saving ${key}`), { code: 'ECONNRESET' });
      }
    }
    const down = await app({ storage: new Down() }, seen);
    const big = new Uint8Array(2 * 1024 * 1024);
    const answer = await fetch(`${down}/photo`, { method: 'POST', body: form(big) });
    expect(answer.status).toBe(503);
    expect(await answer.json()).toMatchObject({ code: 'UNAVAILABLE', message: expect.stringContaining('ECONNRESET') });
    expect(seen.map((s) => `${s.name} ${s.code} ${s.instanceOf}`)).toEqual(['MediaStorageError INVALID_KEY true', 'MediaStorageError UNAVAILABLE true']);
  });

  it('still stores a file within the limit and fills req.file', async () => {
    const storage = new MemoryStorage();
    const url = await app({ storage, save: { maxSize: 100 * 1024 }, key: () => 'avatars/ada.png' });
    const png = makePng(32, 32);
    const res = await fetch(`${url}/photo`, { method: 'POST', body: form(png) });
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ key: 'avatars/ada.png' });
    expect((await storage.readBuffer('avatars/ada.png')).equals(png)).toBe(true);
  });
});
