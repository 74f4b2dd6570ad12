// A web-standard handler: Request in, Response out, the shape of Next.js route handlers, Hono,
// Remix, Bun and Deno. Uploads arrive as a File from request.formData(); the local disk's files
// are served as a streamed Response (Range, ETag, 304) by toWebHandler(storage.handler()).
//
// In Next.js (App Router) the same functions are route files:
//   app/media/[...key]/route.js     export const GET = app.media; export const HEAD = app.media;
//   app/people/[id]/photo/route.js  export const POST = app.uploadPhoto;
// In Hono: new Hono().mount('/', app.fetch). Run here on Node: node examples/web-standard/app.js
import http from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { createAvatarHandler, toWebHandler } from 'media-storage';
import { LocalStorage } from 'media-storage/local';
import { createPeople, MAX_PHOTO_BYTES, personPage, photoKey, uploadErrorStatus } from '../shared/people.js';

const text = (body, status) => new Response(body, { status, headers: { 'content-type': 'text/plain; charset=utf-8' } });

/** The app, over any MediaStorage (a LocalStorage under ./media by default): `fetch(request)` answers every route. */
export function createApp({ storage = new LocalStorage({ root: process.env.MEDIA_ROOT ?? './media', publicBaseUrl: '/media' }) } = {}) {
  const people = createPeople();
  const media = typeof storage.handler === 'function' ? toWebHandler(storage.handler()) : undefined;
  const avatars = toWebHandler(createAvatarHandler({ basePath: '/avatars' }));

  async function uploadPhoto(request, id) {
    const person = people.get(id);
    if (!person) return text('No such person', 404);
    // Check the declared length first: formData() reads the whole body (into memory or a temp
    // file, depending on the runtime) before the storage sees a byte.
    if (Number(request.headers.get('content-length') ?? 0) > MAX_PHOTO_BYTES + 64 * 1024) return text('That photo is larger than 5 MB', 413);
    const photo = (await request.formData()).get('photo');
    if (!(photo instanceof File) || photo.size === 0) return text('Choose a photo to upload', 400);
    try {
      // A File is a body save() takes as is (its size is known, so the limit is checked at once).
      const saved = await storage.save(photoKey(person.id, photo.name), photo, { maxSize: MAX_PHOTO_BYTES });
      const previous = people.setPhoto(person.id, saved.key);
      if (previous) await storage.delete(previous);
    } catch (err) {
      return text(err.code === 'TOO_LARGE' ? 'That photo is larger than 5 MB' : 'Upload failed', uploadErrorStatus(err));
    }
    return new Response(null, { status: 303, headers: { location: `/people/${encodeURIComponent(person.id)}` } });
  }

  async function fetch(request) {
    const { pathname } = new URL(request.url);
    if (media && pathname.startsWith('/media/')) return media(request);
    if (pathname.startsWith('/avatars/')) return avatars(request);
    const route = /^\/people\/([^/]+)(\/photo)?$/.exec(pathname);
    if (route && !route[2] && request.method === 'GET') {
      const person = people.get(decodeURIComponent(route[1]));
      if (!person) return text('No such person', 404);
      return new Response(await personPage(storage, person), { headers: { 'content-type': 'text/html; charset=utf-8' } });
    }
    if (route && route[2] && request.method === 'POST') return uploadPhoto(request, decodeURIComponent(route[1]));
    return text('Not found', 404);
  }

  return { fetch, media, uploadPhoto };
}

/** Serves a fetch handler on Node's http (what Next.js, Hono's node-server and the like do for you). */
export function serveOnNode(fetchHandler) {
  return http.createServer(async (req, res) => {
    const controller = new AbortController();
    res.on('close', () => controller.abort());
    const hasBody = req.method !== 'GET' && req.method !== 'HEAD';
    const request = new Request(`http://${req.headers.host ?? 'localhost'}${req.url}`, {
      method: req.method,
      headers: Object.entries(req.headers).flatMap(([name, value]) =>
        Array.isArray(value) ? value.map((v) => [name, v]) : value === undefined ? [] : [[name, value]],
      ),
      body: hasBody ? Readable.toWeb(req) : undefined,
      duplex: 'half',
      signal: controller.signal,
    });
    const response = await fetchHandler(request);
    res.statusCode = response.status;
    for (const [name, value] of response.headers) res.setHeader(name, name === 'set-cookie' ? response.headers.getSetCookie() : value);
    if (!response.body) return res.end();
    // A client gone mid-way ends the copy; that is not an error of the app's.
    pipeline(Readable.fromWeb(response.body), res).catch(() => undefined);
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = serveOnNode(createApp().fetch).listen(Number(process.env.PORT ?? 3000), () =>
    console.log(`Web-standard recipe at http://localhost:${server.address().port}/people/1`),
  );
}
