// A small CRM: organisers, agents and leads, each with a profile photo. Run `npm start`.
//   PORT (default 3000; 0 picks a free port), HOST (default: all interfaces),
//   CRM_DATA_DIR (default examples/crm/data), CRM_MEDIA_DIR (default examples/crm/media).
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { PassThrough } from 'node:stream';
import busboy from 'busboy';
import {
  createAvatarHandler,
  createMediaHandler,
  initialsAvatar,
  isMediaStorageError,
  resolveAvatars,
  sniffContentType,
  withExistenceCache,
} from 'media-storage';
import { withImages } from 'media-storage/images';
import imageOptions from './images.js';
import { PeopleStore, ROLES } from './people.js';
import { createStorage } from './storage.js';
import { CSS, pageHtml, SCRIPT } from './views.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const MAX_PHOTO_BYTES = 5 * 1024 * 1024;
const NOT_AN_IMAGE = 'That file is not an image: upload a PNG, JPEG, GIF, WebP or AVIF photo';
const IMAGE_TYPES = { 'image/png': '.png', 'image/jpeg': '.jpg', 'image/gif': '.gif', 'image/webp': '.webp', 'image/avif': '.avif' };
// Enough of the start of a file for the core's sniffer to tell what it is (it looks at 512 bytes).
const HEAD_BYTES = 4096;
// After refusing an upload, the rest of the request is read and thrown away (never kept), so that
// the client, still sending, gets the answer instead of a reset connection; up to these limits,
// after which the connection is cut.
const DISCARD_BYTES = 128 * 1024 * 1024;
const DISCARD_MS = 10_000;
// What the upload form adds around the photo (part headers, boundaries, a few small fields).
const FORM_OVERHEAD_BYTES = 64 * 1024;
// Pages may only load what this server serves; no inline script or style. The inline-fallback
// variant of the page additionally allows inline handlers, which is exactly what the strict one avoids.
// img-src blob: is the preview of a chosen photo, shown before it is uploaded (static/crm.js).
const STRICT_CSP = "default-src 'none'; img-src 'self' blob:; script-src 'self'; style-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";
const INLINE_CSP = STRICT_CSP.replace("script-src 'self'", "script-src 'self' 'unsafe-inline'");

export async function createApp(env = process.env) {
  const { storage: rawStorage, servePath, describe } = await createStorage(env);
  // Every photo is decoded and checked, turned upright, stripped of its EXIF (GPS, device, time),
  // and its avatar variant is stored beside it (on Cloudinary: rendered from delivery URLs).
  const images = withImages(rawStorage, imageOptions);
  // Existence answers are cached, and updated by the app's own saves and deletes; a file removed
  // behind the app's back shows as the default once its entry expires, and in the meantime the
  // browser-side fallback covers the 404.
  const storage = withExistenceCache(images, { positiveTtl: 30_000, negativeTtl: 5_000, staleWhileRevalidate: 60_000 });
  // Served through the cached storage, so the first 404 for a vanished photo also teaches the
  // cache: the next page render shows the default without waiting for the TTL. Through the image
  // storage, a variant not made yet (a photo stored before withImages) is generated on its first
  // request. no-cache makes
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
      // The 64 px avatar variant (1x and 2x in srcset), not the multi-megabyte original.
      { variant: 'avatar', default: defaultAvatar, concurrency: 8, onError: (err, key) => console.error(`avatar lookup failed for ${key}:`, err.message) },
    );
  }

  // The success banner travels in a one-shot cookie, not in the URL: a reload or a bookmark of
  // the page does not show "uploaded" again.
  const FLASH = 'crm_flash';
  function redirect(res, message) {
    res.statusCode = 303;
    res.setHeader('Location', '/');
    if (message) res.setHeader('Set-Cookie', `${FLASH}=${encodeURIComponent(message.slice(0, 300))}; Path=/; Max-Age=60; HttpOnly; SameSite=Lax`);
    res.end();
  }
  /** The banner waiting for this request, if any (and the header that clears it). */
  function takeFlash(req) {
    const match = new RegExp(`(?:^|;\\s*)${FLASH}=([^;]*)`).exec(req.headers.cookie ?? '');
    if (!match) return {};
    let message;
    try {
      message = decodeURIComponent(match[1]);
    } catch {
      message = undefined;
    }
    return { message, clear: { 'Set-Cookie': `${FLASH}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax` } };
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

  /** An error the upload route answers with `status` and `message` as they are. */
  function refusal(status, message) {
    return Object.assign(new Error(message), { status });
  }

  /** The first bytes of a stream (HEAD_BYTES, or all of a shorter one), leaving the rest unread. */
  function readHead(stream) {
    return new Promise((resolve, reject) => {
      const chunks = [];
      let size = 0;
      const finish = (ended) => {
        stream.off('data', onData);
        stream.off('end', onEnd);
        stream.off('error', reject);
        if (!ended) stream.pause();
        resolve({ head: Buffer.concat(chunks), ended });
      };
      const onData = (chunk) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size >= HEAD_BYTES) finish(false);
      };
      const onEnd = () => finish(true);
      stream.on('data', onData);
      stream.once('end', onEnd);
      stream.once('error', reject);
    });
  }

  /** Checks by its bytes that an uploaded file is a raster image, then streams it into storage. */
  async function storePhoto(file, person) {
    const { head, ended } = await readHead(file);
    if (head.length === 0) throw refusal(400, 'Choose a photo to upload');
    // Only raster images, whatever the file's name or the browser's claim: an SVG or HTML "photo"
    // could carry script, and a text file named note.jpg is not a photo.
    const type = sniffContentType(head);
    if (!(type in IMAGE_TYPES)) throw refusal(415, NOT_AN_IMAGE);
    const key = `profile_images/${person.id}-${Date.now().toString(36)}${IMAGE_TYPES[type]}`;
    // The storage reads a stream of our own: when it gives up (TOO_LARGE) it destroys that one,
    // and busboy's is simply no longer read.
    const body = new PassThrough();
    body.write(head);
    if (ended) body.end();
    else file.pipe(body);
    return storage.save(key, body, { maxSize: MAX_PHOTO_BYTES, contentType: type });
  }

  /**
   * Reads the rest of a refused upload and drops it (never keeps it), so that the client, still
   * sending, gets the answer rather than a reset connection. Resolves when the request has ended;
   * a client that sends more than DISCARD_BYTES, or for longer than DISCARD_MS, has its connection
   * cut instead.
   */
  function discardRest(req) {
    req.unpipe();
    if (req.readableEnded || req.destroyed) return Promise.resolve();
    return new Promise((resolve) => {
      let discarded = 0;
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      const cut = () => {
        req.socket.destroy();
        done();
      };
      const timer = setTimeout(cut, DISCARD_MS);
      timer.unref();
      req.on('data', (chunk) => {
        discarded += chunk.length;
        if (discarded > DISCARD_BYTES) cut();
      });
      req.once('end', done);
      req.once('close', done);
      req.resume();
    });
  }

  /**
   * Streams the `photo` field of a multipart upload into storage; resolves to the saved object.
   * A refusal (too large, not an image) rejects as soon as it is known, not when the upload ends.
   */
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
      let failed = false;
      const fail = (err) => {
        if (failed) return;
        failed = true;
        // Stop parsing; the caller answers at once and drops the rest of the request.
        parser.on('error', () => undefined);
        req.unpipe(parser);
        reject(err);
      };
      parser.on('file', (field, file, info) => {
        if (field !== 'photo' || saving || !info.filename) {
          file.resume();
          return;
        }
        saving = storePhoto(file, person);
        saving.catch(fail);
      });
      parser.on('error', (err) => fail(Object.assign(err, { status: 400 })));
      parser.on('close', () => {
        if (!saving) return fail(refusal(400, 'Choose a photo to upload'));
        saving.then(resolve, fail);
      });
      req.pipe(parser);
    });
  }

  /**
   * Answers a refused upload at once, while the client may still be sending: the whole answer
   * (the page with the message for a browser's form, plain text otherwise) is written now, with
   * its length, and the response is ended once the rest of the request has been read and dropped.
   * Node stops reading a request whose response has ended, which would leave a client that is
   * still sending stuck, or reset before it reads the answer.
   */
  async function refuseUpload(req, res, status, message) {
    const drained = discardRest(req);
    const html = /text\/html/.test(req.headers.accept ?? '');
    const body = Buffer.from(html ? await renderPage({ error: message }) : message);
    res.writeHead(status, {
      ...(html ? pageHeaders('strict') : { 'Content-Type': 'text/plain; charset=utf-8' }),
      'Content-Length': body.length,
      Connection: 'close',
    });
    res.write(body);
    await drained;
    res.end();
  }

  async function uploadPhoto(req, res, person) {
    const tooLarge = `That photo is too large: photos are limited to ${MAX_PHOTO_BYTES / 1024 / 1024} MB`;
    // Browsers announce the size of a form: one far over the limit is refused before it is read.
    // A request without Content-Length (chunked) is held to the limit as it streams, by maxSize.
    if (Number(req.headers['content-length']) > MAX_PHOTO_BYTES + FORM_OVERHEAD_BYTES) return refuseUpload(req, res, 413, tooLarge);
    let info;
    try {
      info = await receivePhoto(req, person);
    } catch (err) {
      // Over 5 MB, or over the pixel limit (a decompression bomb is a tiny file of huge dimensions).
      if (isMediaStorageError(err) && err.code === 'TOO_LARGE')
        return refuseUpload(
          req,
          res,
          413,
          /pixels/.test(err.message) ? `That photo is too large: photos are limited to ${imageOptions.maxPixels / 1e6} megapixels` : tooLarge,
        );
      // Image bytes that do not decode (damaged, truncated, or only dressed as an image).
      if (isMediaStorageError(err) && err.code === 'INVALID_INPUT') return refuseUpload(req, res, 415, NOT_AN_IMAGE);
      if (err.status) return refuseUpload(req, res, err.status, err.message);
      throw err;
    }
    const previous = person.photo;
    people.update(person.id, { photo: info.key });
    if (previous && previous !== info.key) await storage.delete(previous).catch(() => undefined);
    redirect(res, `Photo of ${person.name} uploaded`);
  }

  function pageHeaders(variant) {
    return {
      'Content-Type': 'text/html; charset=utf-8',
      'Content-Security-Policy': variant === 'inline' ? INLINE_CSP : STRICT_CSP,
      'X-Content-Type-Options': 'nosniff',
      'Cache-Control': 'no-store',
    };
  }

  /** The list page, with a status message or an error. */
  async function renderPage({ message, error, variant = 'strict' } = {}) {
    const list = people.all();
    const avatars = await avatarsFor(list);
    return pageHtml({ people: list, avatars, storageDescription: describe, variant, message, error });
  }

  async function route(req, res) {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const { pathname } = url;
    if (req.method === 'GET' && pathname === '/') {
      const variant = url.searchParams.get('fallback') === 'inline' ? 'inline' : 'strict';
      const flash = takeFlash(req);
      const html = await renderPage({ variant, message: flash.message });
      res.writeHead(200, { ...pageHeaders(variant), ...flash.clear });
      res.end(html);
      return;
    }
    if (req.method === 'GET' && pathname === '/static/crm.css') {
      res.setHeader('Content-Type', 'text/css; charset=utf-8');
      res.end(CSS);
      return;
    }
    if (req.method === 'GET' && pathname === '/static/crm.js') {
      res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
      res.end(SCRIPT);
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
    if (req.method === 'POST' && pathname === '/demo/redeploy') {
      // The demo of what this library is for: a redeploy on an ephemeral disk loses the uploaded
      // files while the database keeps pointing at them. Deleted behind the app's back (past the
      // existence cache, which is not told), the photo and its variants go; the rows stay.
      const form = await readForm(req);
      const only = form.get('person');
      const victims = people.all().filter((p) => p.photo && (!only || p.id === only));
      for (const person of victims) await images.delete(person.photo).catch(() => undefined);
      return redirect(
        res,
        `Redeploy simulated: ${victims.length} photo file${victims.length === 1 ? '' : 's'} lost from the disk; the people still point at them`,
      );
    }
    const match = /^\/people\/([^/]+)(\/photo|\/delete)?$/.exec(pathname);
    if (req.method === 'POST' && match) {
      const person = people.get(decodeURIComponent(match[1]));
      if (!person) return sendText(res, 404, 'No such person');
      if (match[2] === '/photo') return uploadPhoto(req, res, person);
      if (match[2] === '/delete') {
        people.remove(person.id);
        // Through the app's storage: the cache forgets it, the variants go with it.
        if (person.photo) await storage.delete(person.photo).catch((err) => console.error(`could not delete the photo of ${person.id}:`, err.message));
        return redirect(res, `${person.name} deleted`);
      }
      const form = await readForm(req);
      const name = (form.get('name') ?? '').trim().slice(0, 200);
      const role = form.get('role');
      if (!name || !ROLES.includes(role)) return sendText(res, 400, 'A name and a role (organiser, agent or lead) are needed');
      people.update(person.id, { name, role });
      return redirect(res, `${name} saved`);
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
