// Fastify + @fastify/multipart: the uploaded file's stream goes straight into storage.save; the
// local disk's files are served by storage.handler() on Fastify's raw request and response.
// Run: node examples/fastify/app.js
import { fileURLToPath } from 'node:url';
import Fastify from 'fastify';
import multipart from '@fastify/multipart';
import { createAvatarHandler } from 'media-storage';
import { LocalStorage } from 'media-storage/local';
import { createPeople, MAX_PHOTO_BYTES, personPage, photoKey, uploadErrorStatus } from '../shared/people.js';

/** Mounts a Node `(req, res, next)` handler of media-storage on a Fastify route. */
function nodeHandler(handler) {
  return (request, reply) => {
    // The handler answers on the raw response itself; Fastify must not send one too.
    reply.hijack();
    handler(request.raw, reply.raw, (err) => {
      reply.raw.statusCode = err ? 500 : 404;
      reply.raw.end(err ? 'Internal error' : 'Not found');
    });
  };
}

/** The app, over any MediaStorage (a LocalStorage under ./media by default). */
export async function createApp({ storage = new LocalStorage({ root: process.env.MEDIA_ROOT ?? './media', publicBaseUrl: '/media' }) } = {}) {
  const people = createPeople();
  const app = Fastify();
  // The storage enforces the size (TOO_LARGE, nothing stored); multipart's own limit is set above
  // it so the storage's answer is the one the user gets.
  await app.register(multipart, { limits: { files: 1, fileSize: MAX_PHOTO_BYTES + 1 } });

  if (typeof storage.handler === 'function') {
    // Fastify answers HEAD with the GET route; the handler sees the raw HEAD and sends no body.
    app.get('/media/*', nodeHandler(storage.handler()));
  }
  app.get('/avatars/*', nodeHandler(createAvatarHandler({ basePath: '/avatars' })));

  app.get('/people/:id', async (request, reply) => {
    const person = people.get(request.params.id);
    if (!person) return reply.code(404).send('No such person');
    return reply.type('text/html; charset=utf-8').send(await personPage(storage, person));
  });

  app.post('/people/:id/photo', async (request, reply) => {
    const person = people.get(request.params.id);
    if (!person) return reply.code(404).send('No such person');
    const file = await request.file();
    if (!file || file.fieldname !== 'photo') return reply.code(400).send('Choose a photo to upload');
    let saved;
    try {
      saved = await storage.save(photoKey(person.id, file.filename), file.file, { maxSize: MAX_PHOTO_BYTES });
    } catch (err) {
      // Whatever the storage did not read of the upload is drained, so the client gets the answer.
      file.file.resume();
      return reply.code(uploadErrorStatus(err)).send(err.code === 'TOO_LARGE' ? 'That photo is larger than 5 MB' : 'Upload failed');
    }
    const previous = people.setPhoto(person.id, saved.key);
    if (previous) await storage.delete(previous);
    return reply.redirect(`/people/${encodeURIComponent(person.id)}`, 303);
  });
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const app = await createApp();
  const address = await app.listen({ port: Number(process.env.PORT ?? 3000) });
  console.log(`Fastify recipe at ${address}/people/1`);
}
