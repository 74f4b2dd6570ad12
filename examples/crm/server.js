// A small CRM: organisers, agents and leads, each with a profile photo. Run `npm start`.
//   PORT (default 3000; 0 picks a free port), HOST (default: all interfaces),
//   CRM_DATA_DIR (default examples/crm/data), CRM_MEDIA_DIR (default examples/crm/media).
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import busboy from 'busboy';
import { createAvatarHandler, createMediaHandler, initialsAvatar, isMediaStorageError, resolveAvatars, withExistenceCache } from 'media-storage';
import { PeopleStore, ROLES } from './people.js';
import { createStorage } from './storage.js';
import { CSS, pageHtml } from './views.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MAX_PHOTO_BYTES = 5 * 1024 * 1024;
const IMAGE_TYPES = { 'image/png': '.png', 'image/jpeg': '.jpg', 'image/gif': '.gif', 'image/webp': '.webp', 'image/avif': '.avif' };
// Pages may only load what this server serves; no inline script or style. The inline-fallback
// variant of the page additionally allows inline handlers, which is exactly what the strict one avoids.
const STRICT_CSP = "default-src 'none'; img-src 'self'; script-src 'self'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const INLINE_CSP = STRICT_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'");

export async function createApp(env = process.env) {
  const { storage: rawStorage, servePath, describe } = await createStorage(env);
  // Existence answers are cached, and updated by the app's own saves and deletes; a file removed
  // behind the app's back shows as the default once its entry expires, and in the meantime the
  // browser-side fallback covers the 404.
  const storage = withExistenceCache(rawStorage, { positiveTtl: 30_000, negativeTtl: 5_000, staleWhileRevalidate: 60_000 });
  // Served through the cached storage, so the first 404 for a vanished photo also teaches the
  // cache: the next page render shows the default without waiting for the TTL. no-cache makes
  // browsers revalidate (a cheap 304 by ETag), so a wiped file shows as the default at once in
  // this demo; keys are unique per upload, so production may cache much longer.
  const mediaHandler = servePath ? createMediaHandler(storage, { basePath: servePath, cacheControl: 'no-cache' }) : undefined;
  const people = new PeopleStore(path.resolve(env.CRM_DATA_DIR ?? path.join(here, 'data')));
  const avatarHandler = createAvatarHandler({ basePath: '/avatars' });
  const defaultAvatar = initialsAvatar({ basePath: '/avatars', size: 64 });

  async function avatarsFor(list) {
    return resolveAvatars(
      storage,
      list.map((p) => ({ path: p.photo, id: p.id, name: p.name })),
      { default: defaultAvatar, concurrency: 8, onError: (err, key) => console.error(`avatar lookup failed for ${key}:`, err.message) },
    );
  }

  function redirect(res, message) {
    res.statusCode = 303;
    res.setHeader('Location', message ? `/?msg=${encodeURIComponent(message)}` : '/');
    res.end();
  }

  function sendText(res, status, text) {
    res.statusCode = status;
    res.setHeader('Content-Type', 'text/plain; charset=utf-8');
    res.end(text);
  }

  async function readForm(req) {
    let body = '';
    for await (const chunk of req) {
      body += chunk;
      if (body.length > 10_000) throw Object.assign(new Error('Form too large'), { status: 413 });
    }
    return new URLSearchParams(body);
  }

  /** Streams the `photo` field of a multipart upload into storage; resolves to the saved key. */
  function receivePhoto(req, person) {
    return new Promise((resolve, reject) => {
      let parser;
      try {
        parser = busboy({ headers: req.headers, limits: { files: 1, fields: 5, fieldSize: 1024 } });
      } catch (err) {
        reject(Object.assign(err, { status: 400 }));
        return;
      }
      let saving;
      parser.on('file', (field, file, info) => {
        if (field !== 'photo' || saving || !info.filename) {
          file.resume();
          return;
        }
        const declaredExt = path.extname(info.filename).toLowerCase();
        const ext = Object.values(IMAGE_TYPES).includes(declaredExt) ? declaredExt : (IMAGE_TYPES[info.mimeType] ?? '.jpg');
        const key = `profile_images/${person.id}-${Date.now().toString(36)}${ext}`;
        saving = storage.save(key, file, { maxSize: MAX_PHOTO_BYTES }).catch((err) => {
          file.resume(); // let the parser finish reading the request
          throw err;
        });
        saving.catch(() => undefined);
      });
      parser.on('error', (err) => reject(Object.assign(err, { status: 400 })));
      parser.on('close', () => {
        if (!saving) return reject(Object.assign(new Error('Choose a photo to upload'), { status: 400 }));
        saving.then(resolve, reject);
      });
      req.pipe(parser);
    });
  }

  async function uploadPhoto(req, res, person) {
    let info;
    try {
      info = await receivePhoto(req, person);
    } catch (err) {
      if (isMediaStorageError(err) && err.code === 'TOO_LARGE') return sendText(res, 413, `Photos are limited to ${MAX_PHOTO_BYTES / 1024 / 1024} MB`);
      if (isMediaStorageError(err) && err.code === 'INVALID_INPUT') return sendText(res, 400, err.message);
      throw err;
    }
    if (!(info.contentType in IMAGE_TYPES)) {
      // Only raster images: an SVG or HTML file "photo" could carry script.
      await storage.delete(info.key);
      return sendText(res, 415, `Not a PNG, JPEG, GIF, WebP or AVIF image (got ${info.contentType})`);
    }
    const previous = person.photo;
    people.update(person.id, { photo: info.key });
    if (previous && previous !== info.key) await storage.delete(previous).catch(() => undefined);
    redirect(res, `Photo of ${person.name} uploaded`);
  }

  async function route(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const { pathname } = url;
    if (req.method === 'GET' && pathname === '/') {
      const list = people.all();
      const avatars = await avatarsFor(list);
      const variant = url.searchParams.get('fallback') === 'inline' ? 'inline' : 'strict';
      res.setHeader('Content-Type', 'text/html; charset=utf-8');
      res.setHeader('Content-Security-Policy', variant === 'inline' ? INLINE_CSP : STRICT_CSP);
      res.setHeader('X-Content-Type-Options', 'nosniff');
      res.setHeader('Cache-Control', 'no-store');
      res.end(pageHtml({ people: list, avatars, storageDescription: describe, variant, message: url.searchParams.get('msg') }));
      return;
    }
    if (req.method === 'GET' && pathname === '/static/crm.css') {
      res.setHeader('Content-Type', 'text/css; charset=utf-8');
      res.end(CSS);
      return;
    }
    if (req.method === 'GET' && pathname === '/api/people') {
      const list = people.all();
      const avatars = await avatarsFor(list);
      res.setHeader('Content-Type', 'application/json; charset=utf-8');
      res.end(JSON.stringify(list.map((p, i) => ({ ...p, avatar: avatars[i] }))));
      return;
    }
    if (req.method === 'POST' && pathname === '/people') {
      const form = await readForm(req);
      const name = (form.get('name') ?? '').trim().slice(0, 200);
      const role = form.get('role');
      if (!name || !ROLES.includes(role)) return sendText(res, 400, 'A name and a role (organiser, agent or lead) are needed');
      people.add(name, role);
      return redirect(res, `${name} added`);
    }
    const match = /^\/people\/([^/]+)\/photo(\/wipe)?$/.exec(pathname);
    if (req.method === 'POST' && match) {
      const person = people.get(decodeURIComponent(match[1]));
      if (!person) return sendText(res, 404, 'No such person');
      if (!match[2]) return uploadPhoto(req, res, person);
      // Behind the app's back: straight to the backend, so the cache is not told (as when a
      // redeploy wipes an ephemeral disk). The database row keeps pointing at the file.
      if (person.photo) await rawStorage.delete(person.photo).catch(() => undefined);
      return redirect(res, `The file of ${person.name}'s photo was deleted behind the app's back`);
    }
    if (mediaHandler && pathname.startsWith(`${servePath}/`)) return mediaHandler(req, res);
    if (pathname.startsWith('/avatars/')) return avatarHandler(req, res);
    sendText(res, 404, 'Not found');
  }

  const server = http.createServer((req, res) => {
    route(req, res).catch((err) => {
      console.error(err);
      if (!res.headersSent) sendText(res, err.status ?? 500, err.status ? err.message : 'Internal error');
      else res.destroy();
    });
  });
  return { server, storage, describe };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const { server, describe } = await createApp();
  const port = Number(process.env.PORT ?? 3000);
  server.listen(port, process.env.HOST, () => {
    const { port: actual } = server.address();
    console.log(`CRM example running at http://${process.env.HOST ?? 'localhost'}:${actual}/  (photos: ${describe})`);
  });
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
