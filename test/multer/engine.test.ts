import http from 'node:http';
import multer from 'multer';
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryStorage } from '../../src/memory/index.js';
import { mediaStorageEngine, type MediaStorageEngineOptions } from '../../src/multer/index.js';
import { listen } from '../support/http.js';
import { makePng } from '../support/png.js';

// Real multer (2.x) on a plain node:http server, as Express would run it.
async function serve(handler: http.RequestListener) {
  const server = await listen(handler);
  closers.push(server.close);
  return server.url;
}
const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
});

function uploadServer(engineOptions: MediaStorageEngineOptions, fields: 'single' | 'array' = 'single') {
  const upload = multer({ storage: mediaStorageEngine(engineOptions) });
  const middleware = fields === 'single' ? upload.single('photo') : upload.array('photo', 5);
  return serve((req, res) => {
    middleware(req as never, res as never, (err?: unknown) => {
      res.setHeader('Content-Type', 'application/json');
      const r = req as unknown as { file?: unknown; files?: unknown; body?: unknown };
      if (err) {
        res.statusCode = 400;
        res.end(JSON.stringify({ code: (err as { code?: string }).code, message: (err as Error).message }));
        return;
      }
      res.end(JSON.stringify({ file: r.file, files: r.files, body: r.body }));
    });
  });
}

const post = (url: string, form: FormData) => fetch(url, { method: 'POST', body: form });

describe('mediaStorageEngine with real multer', () => {
  it('streams the file into storage and fills req.file', async () => {
    const storage = new MemoryStorage({ baseUrl: '/media' });
    const url = await uploadServer({ storage, key: (_req, file) => `avatars/${file.fieldname}-1.png` });
    const png = makePng(20, 20);
    const form = new FormData();
    form.append('name', 'Ada');
    form.append('photo', new Blob([new Uint8Array(png)], { type: 'image/png' }), 'ada.png');
    const res = await post(url, form);
    expect(res.status).toBe(200);
    const { file, body } = (await res.json()) as { file: Record<string, unknown>; body: Record<string, unknown> };
    expect(body).toEqual({ name: 'Ada' });
    expect(file).toMatchObject({
      fieldname: 'photo',
      originalname: 'ada.png',
      key: 'avatars/photo-1.png',
      size: png.length,
      contentType: 'image/png',
      url: '/media/avatars/photo-1.png',
      location: '/media/avatars/photo-1.png',
    });
    expect((await storage.readBuffer('avatars/photo-1.png')).equals(png)).toBe(true);
  });

  it('uses uploads/<uuid>.<ext> by default and keeps hostile names out of keys', async () => {
    const storage = new MemoryStorage();
    const url = await uploadServer({ storage });
    const form = new FormData();
    form.append('photo', new Blob([new Uint8Array(makePng(4, 4))]), '../../etc/passwd.PNG');
    const { file } = (await (await post(url, form)).json()) as { file: { key: string } };
    expect(file.key).toMatch(/^uploads\/[0-9a-f-]{36}\.png$/);
    expect(storage.size).toBe(1);
  });

  it('passes a key that breaks the key rules on as INVALID_KEY, storing nothing', async () => {
    const storage = new MemoryStorage();
    // busboy already strips folders from file names, so build a bad key explicitly.
    const url = await uploadServer({ storage, key: (_req, file) => `../${file.originalname}` });
    const form = new FormData();
    form.append('photo', new Blob(['x']), '../escape.png');
    const res = await post(url, form);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'INVALID_KEY' });
    expect(storage.size).toBe(0);
  });

  it('enforces maxSize from save options with TOO_LARGE and stores nothing', async () => {
    const storage = new MemoryStorage();
    const url = await uploadServer({ storage, save: { maxSize: 1000 } });
    const form = new FormData();
    form.append('photo', new Blob([new Uint8Array(5000)]), 'big.png');
    const res = await post(url, form);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ code: 'TOO_LARGE' });
    expect(storage.size).toBe(0);
  });

  it('multer removes files already stored when a later one fails (via _removeFile)', async () => {
    const storage = new MemoryStorage();
    const url = await uploadServer({ storage, save: (_req, file) => ({ maxSize: file.originalname === 'second.png' ? 10 : 10_000 }) }, 'array');
    const form = new FormData();
    form.append('photo', new Blob([new Uint8Array(makePng(8, 8))]), 'first.png');
    form.append('photo', new Blob([new Uint8Array(500)]), 'second.png');
    const res = await post(url, form);
    expect(res.status).toBe(400);
    expect(storage.size).toBe(0);
  });

  it('url: false leaves the URL out; url options are passed on', async () => {
    const storage = new MemoryStorage({ baseUrl: '/media' });
    const noUrl = await uploadServer({ storage, url: false, key: () => 'a.png' });
    const form = new FormData();
    form.append('photo', new Blob([new Uint8Array(makePng(2, 2))]), 'a.png');
    const { file } = (await (await post(noUrl, form)).json()) as { file: Record<string, unknown> };
    expect(file.url).toBeUndefined();
    const signed = await uploadServer({ storage, url: { expiresIn: 60 }, key: () => 'b.png' });
    const { file: f2 } = (await (await post(signed, form)).json()) as { file: { url: string } };
    expect(f2.url).toMatch(/^\/media\/b\.png\?.*signature=/);
  });

  it('type-checks as multer.StorageEngine', () => {
    const engine: multer.StorageEngine = mediaStorageEngine({ storage: new MemoryStorage() });
    expect(typeof engine._handleFile).toBe('function');
    expect(() => mediaStorageEngine({} as never)).toThrow(TypeError);
  });
});
