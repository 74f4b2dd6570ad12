// The framework recipes of examples/ (issue 17, point 2): Express with multer, Fastify with
// @fastify/multipart, and a web-standard Request/Response handler (Next.js route handlers, Hono).
// Each is driven the same way through its real stack: a photo uploaded as multipart, served back
// with ETag, 304 and Range from the local disk, and the default avatar where there is no photo.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildIfStale } from '../../scripts/build-if-stale.mjs';
import { makePng } from '../support/png.js';
import { tempDir } from '../support/tmp.js';

type Send = (path: string, init?: RequestInit) => Promise<Response>;
interface Running {
  send: Send;
  storage: { list: (prefix: string) => Promise<{ items: Array<{ key: string }> }>; delete: (key: string) => Promise<void> };
  stop: () => Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** An example module (plain JavaScript, so typed here by what the test uses). */
const load = <T>(file: string): Promise<T> => import(new URL(file, import.meta.url).href) as Promise<T>;
type AnyStorage = Awaited<ReturnType<typeof localStorage>>;
interface ListeningApp {
  listen: (port: number, host: string) => Server;
}
interface FastifyApp {
  listen: (options: { port: number; host: string }) => Promise<string>;
  close: () => Promise<void>;
}
interface WebApp {
  fetch: (request: Request) => Promise<Response>;
}

/** The examples import the built package, as an app would. */
async function localStorage(root: string) {
  const { LocalStorage } = await import('media-storage/local');
  return new LocalStorage({ root, baseUrl: '/media', warnOnEphemeralDisk: false });
}

const RECIPES: Record<string, (root: string) => Promise<Running>> = {
  express: async (root) => {
    const storage = await localStorage(root);
    const { createApp } = await load<{ createApp: (o: { storage: AnyStorage }) => ListeningApp }>('../../examples/express/app.js');
    const server = createApp({ storage }).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    return {
      storage,
      send: (p, init) => fetch(base + p, { redirect: 'manual', ...init }),
      stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
  fastify: async (root) => {
    const storage = await localStorage(root);
    const { createApp } = await load<{ createApp: (o: { storage: AnyStorage }) => Promise<FastifyApp> }>('../../examples/fastify/app.js');
    const app = await createApp({ storage });
    const base = await app.listen({ port: 0, host: '127.0.0.1' });
    return { storage, send: (p, init) => fetch(base + p, { redirect: 'manual', ...init }), stop: () => app.close() };
  },
  // Called as a framework calls it: a Request in, a Response out, no server.
  'web-standard': async (root) => {
    const storage = await localStorage(root);
    const { createApp } = await load<{ createApp: (o: { storage: AnyStorage }) => WebApp }>('../../examples/web-standard/app.js');
    const app = createApp({ storage });
    return { storage, send: (p, init) => app.fetch(new Request(`http://app.test${p}`, init)), stop: async () => undefined };
  },
  // The same handler behind Node's http, as Next.js or Hono's node-server run it.
  'web-standard on Node http': async (root) => {
    const storage = await localStorage(root);
    const { createApp, serveOnNode } = await load<{ createApp: (o: { storage: AnyStorage }) => WebApp; serveOnNode: (f: WebApp['fetch']) => Server }>(
      '../../examples/web-standard/app.js',
    );
    const server = serveOnNode(createApp({ storage }).fetch);
    const base = await listen(server);
    return {
      storage,
      send: (p, init) => fetch(base + p, { redirect: 'manual', ...init }),
      stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
  },
};

const imgSrc = (html: string): string => {
  const src = /<img\b[^>]*\ssrc="([^"]*)"/.exec(html)?.[1];
  if (src === undefined) throw new Error(`no <img> in:\n${html}`);
  return src
    .replace(/&#(\d+);/g, (_, code: string) => String.fromCharCode(Number(code)))
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, '&');
};

function photoForm(bytes: Uint8Array, name = 'me.png', type = 'image/png'): FormData {
  const form = new FormData();
  form.append('photo', new File([bytes as Uint8Array<ArrayBuffer>], name, { type }));
  return form;
}

for (const [name, start] of Object.entries(RECIPES)) {
  describe(`recipe: ${name}`, () => {
    let app: Running;
    let removeRoot: () => Promise<void>;
    const photo = makePng(32, 32);

    beforeAll(async () => {
      buildIfStale({ quiet: true });
      const root = await tempDir(`recipe-${name.replace(/\W+/g, '-')}`);
      removeRoot = root.remove;
      app = await start(root.dir);
    });
    afterAll(async () => {
      await app?.stop();
      await removeRoot?.();
    });

    it('shows the default avatar, served as an SVG, for a person without a photo', async () => {
      const page = await app.send('/people/2');
      expect(page.status).toBe(200);
      const src = imgSrc(await page.text());
      expect(src).toMatch(/^\/avatars\/initials\.svg\?/);
      expect(new URL(src, 'http://app.test').searchParams.get('name')).toBe('Grace Hopper');
      const avatar = await app.send(src);
      expect(avatar.status).toBe(200);
      expect(avatar.headers.get('content-type')).toMatch(/^image\/svg\+xml/);
      expect(await avatar.text()).toContain('>GH<');
    });

    it('uploads a photo as multipart, then the page shows it and the storage serves it with ETag, 304 and Range', async () => {
      const upload = await app.send('/people/1/photo', { method: 'POST', body: photoForm(photo) });
      expect(upload.status, await upload.clone().text()).toBe(303);
      expect(upload.headers.get('location')).toBe('/people/1');

      const src = imgSrc(await (await app.send('/people/1')).text());
      expect(src).toMatch(/^\/media\/profile_images\/1-[0-9a-f-]{36}\.png$/);
      const served = await app.send(src);
      expect(served.status).toBe(200);
      expect(served.headers.get('content-type')).toBe('image/png');
      expect(served.headers.get('x-content-type-options')).toBe('nosniff');
      expect(Buffer.from(await served.arrayBuffer()).equals(photo)).toBe(true);
      const etag = served.headers.get('etag');
      expect(etag).toBeTruthy();

      const revalidated = await app.send(src, { headers: { 'if-none-match': etag! } });
      expect(revalidated.status).toBe(304);
      expect(await revalidated.text()).toBe('');

      const partial = await app.send(src, { headers: { range: 'bytes=1-3' } });
      expect(partial.status).toBe(206);
      expect(partial.headers.get('content-range')).toBe(`bytes 1-3/${photo.length}`);
      expect(Buffer.from(await partial.arrayBuffer()).equals(photo.subarray(1, 4))).toBe(true);

      const head = await app.send(src, { method: 'HEAD' });
      expect(head.status).toBe(200);
      expect(head.headers.get('content-length')).toBe(String(photo.length));
    });

    it('a new photo replaces the old one: the old file is deleted', async () => {
      const before = imgSrc(await (await app.send('/people/1')).text());
      const second = makePng(16, 16, [10, 120, 200]);
      expect((await app.send('/people/1/photo', { method: 'POST', body: photoForm(second, 'new.png') })).status).toBe(303);
      const after = imgSrc(await (await app.send('/people/1')).text());
      expect(after).not.toBe(before);
      expect(Buffer.from(await (await app.send(after)).arrayBuffer()).equals(second)).toBe(true);
      expect((await app.send(before)).status).toBe(404);
      expect((await app.storage.list('profile_images/')).items).toHaveLength(1);
    });

    it('refuses a photo over 5 MB with 413 and stores nothing', async () => {
      const big = new Uint8Array(5 * 1024 * 1024 + 100);
      big.set(photo);
      const refused = await app.send('/people/2/photo', { method: 'POST', body: photoForm(big, 'big.png') });
      expect(refused.status).toBe(413);
      expect(await refused.text()).toContain('larger than 5 MB');
      expect((await app.storage.list('profile_images/2-')).items).toEqual([]);
      expect(imgSrc(await (await app.send('/people/2')).text())).toMatch(/^\/avatars\//);
    });

    it('a photo gone from the disk (a redeploy) shows the default avatar again', async () => {
      const src = imgSrc(await (await app.send('/people/1')).text());
      await app.storage.delete(decodeURIComponent(src.slice('/media/'.length)));
      const fallback = imgSrc(await (await app.send('/people/1')).text());
      expect(fallback).toMatch(/^\/avatars\/initials\.svg\?/);
      expect(new URL(fallback, 'http://app.test').searchParams.get('name')).toBe('Ada Lovelace');
      expect((await app.send(src)).status).toBe(404);
    });
  });
}
