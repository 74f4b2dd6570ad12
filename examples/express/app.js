// Express + multer: uploads stream through media-storage's multer engine into the storage; the
// local disk's files are served by storage.handler(). Run: node examples/express/app.js
import { fileURLToPath } from 'node:url';
import express from 'express';
import multer from 'multer';
import { createAvatarHandler } from 'media-storage';
import { LocalStorage } from 'media-storage/local';
import { mediaStorageEngine } from 'media-storage/multer';
import { createPeople, MAX_PHOTO_BYTES, personPage, photoKey, uploadErrorStatus } from '../shared/people.js';

/** The app, over any MediaStorage (a LocalStorage under ./media by default). */
export function createApp({ storage = new LocalStorage({ root: process.env.MEDIA_ROOT ?? './media', publicBaseUrl: '/media' }) } = {}) {
  const people = createPeople();
  const upload = multer({
    storage: mediaStorageEngine({
      storage,
      key: (req, file) => photoKey(req.params.id, file.originalname),
      save: { maxSize: MAX_PHOTO_BYTES },
    }),
    limits: { files: 1 },
  });

  const app = express();
  // Local and memory storage are served by the app; S3, Cloudinary and B2 give their own URLs.
  if (typeof storage.handler === 'function') app.use(storage.handler());
  app.use(createAvatarHandler({ basePath: '/avatars' }));

  const person = (req, res, next) => {
    req.person = people.get(req.params.id);
    if (!req.person) return res.status(404).send('No such person');
    next();
  };

  app.get('/people/:id', person, async (req, res) => {
    res.type('html').send(await personPage(storage, req.person));
  });

  app.post('/people/:id/photo', person, upload.single('photo'), async (req, res) => {
    if (!req.file) return res.status(400).send('Choose a photo to upload');
    const previous = people.setPhoto(req.person.id, req.file.key);
    if (previous) await storage.delete(previous);
    res.redirect(303, `/people/${encodeURIComponent(req.person.id)}`);
  });

  // multer hands the storage's errors here: TOO_LARGE (nothing was stored) is the user's 413.
  app.use((err, _req, res, _next) => {
    res.status(uploadErrorStatus(err)).send(err.code === 'TOO_LARGE' ? 'That photo is larger than 5 MB' : 'Upload failed');
  });
  return app;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const server = createApp().listen(Number(process.env.PORT ?? 3000), () =>
    console.log(`Express recipe at http://localhost:${server.address().port}/people/1`),
  );
}
