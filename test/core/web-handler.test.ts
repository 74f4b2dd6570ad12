// toWebHandler: the package's Node handlers as (Request) => Promise<Response>, for Next.js route
// handlers, Hono and other fetch-API frameworks. The serving itself is createMediaHandler's (tested
// in its own files); here, that every answer crosses over whole: status, headers, bodies (late
// readers too), null bodies, passing on, and a client that goes away.
import { Readable } from 'node:stream';
import type { ReadableStream as NodeReadableStream } from 'node:stream/web';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { createAvatarHandler, toWebHandler } from '../../src/index.js';
import { MemoryStorage } from '../../src/memory/index.js';

async function setup() {
  const storage = new MemoryStorage({ baseUrl: '/media' });
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  await storage.save('a/photo.png', Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex'));
  await storage.save('a/big.bin', big);
  return { storage, big, serve: toWebHandler(storage.handler()) };
}
const get = (path: string, init?: RequestInit) => new Request(`http://app.test${path}`, init);

describe('toWebHandler', () => {
  it('gives the status, headers and body, even to a reader that comes late', async () => {
    const { serve } = await setup();
    const response = await serve(get('/media/a/photo.png'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('image/png');
    expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    expect(response.headers.get('etag')).toBeTruthy();
    // The Node side has finished and closed by now; the bytes must still be there.
    await sleep(50);
    expect(Buffer.from(await response.arrayBuffer()).toString('hex')).toBe('89504e470d0a1a0a0000000d49484452');
  });

  it('a 304 and a HEAD have a null body; a Range gets 206 and only its bytes', async () => {
    const { serve } = await setup();
    const etag = (await serve(get('/media/a/photo.png'))).headers.get('etag')!;
    const notModified = await serve(get('/media/a/photo.png', { headers: { 'if-none-match': etag } }));
    expect(notModified.status).toBe(304);
    expect(notModified.body).toBeNull();
    const head = await serve(get('/media/a/big.bin', { method: 'HEAD' }));
    expect([head.status, head.body, head.headers.get('content-length')]).toEqual([200, null, String(3 * 1024 * 1024)]);
    const range = await serve(get('/media/a/big.bin', { headers: { range: 'bytes=10-19' } }));
    expect(range.status).toBe(206);
    expect(range.headers.get('content-range')).toBe(`bytes 10-19/${3 * 1024 * 1024}`);
    expect((await range.arrayBuffer()).byteLength).toBe(10);
  });

  it('streams a large file whole', async () => {
    const { serve, big } = await setup();
    const response = await serve(get('/media/a/big.bin'));
    expect(Buffer.from(await response.arrayBuffer()).equals(big)).toBe(true);
  });

  it("a missing key is the handler's 404; a path outside it is passed on (notFound, default 404)", async () => {
    const { storage, serve } = await setup();
    expect((await serve(get('/media/a/none.png'))).status).toBe(404);
    const outside = await serve(get('/elsewhere'));
    expect([outside.status, await outside.text()]).toEqual([404, 'Not found']);
    const custom = toWebHandler(storage.handler(), { notFound: () => new Response('try the app', { status: 418 }) });
    expect((await custom(get('/elsewhere'))).status).toBe(418);
  });

  it('serves the avatar handler too, to a reader that starts at once (as a server piping it on does)', async () => {
    const avatars = toWebHandler(createAvatarHandler({ basePath: '/avatars' }));
    for (let i = 0; i < 5; i++) {
      const response = await avatars(get(`/avatars/initials.svg?name=Ada%20Lovelace&id=${i}&size=64`));
      expect(response.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      const chunks: Buffer[] = [];
      for await (const chunk of Readable.fromWeb(response.body as NodeReadableStream<Uint8Array>)) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString()).toContain('>AL<');
    }
  });

  it('a client that goes away stops the read: the body errors instead of running on', async () => {
    const { serve } = await setup();
    const controller = new AbortController();
    const response = await serve(get('/media/a/big.bin', { signal: controller.signal }));
    const reader = response.body!.getReader();
    await reader.read();
    controller.abort();
    await expect(
      (async () => {
        for (;;) if ((await reader.read()).done) return 'ended';
      })(),
    ).rejects.toThrow();
  });
});
