/**
 * The backends the image tests run on, each with an HTTP server serving a media handler over the
 * image storage (how an app serves lazily generated variants) and a fetch for the URLs `url()`
 * gives: local disk, memory, S3 (s3rver, or the server the MEDIA_STORAGE_TEST_S3_* variables
 * name, Ceph RGW in .ci/run), the fake B2 and the fake Cloudinary.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { B2Storage } from '../../src/b2/index.js';
import { CloudinaryStorage } from '../../src/cloudinary/index.js';
import { createMediaHandler } from '../../src/core/http-handler.js';
import type { MediaStorage } from '../../src/core/types.js';
import { withImages, type ImageOptions, type ImageStorage } from '../../src/images/index.js';
import { StorageLayer, type NextCall, type OperationCall } from '../../src/layers/layer.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { startFakeB2 } from '../support/fakes/b2-server.js';
import { FakeCloudinary } from '../support/fakes/cloudinary-server.js';
import { startS3Target, targetLabel } from '../support/s3-target.js';
import { tempDir } from '../support/tmp.js';

/** Counts the writes that reach the backend, by key: how a test knows how often a variant was generated. */
export class CountingStorage extends StorageLayer {
  readonly saves: string[] = [];
  readonly reads: string[] = [];
  protected override intercept<T>(call: OperationCall, next: NextCall<T>): Promise<T> {
    if (call.operation === 'save') this.saves.push(call.key!);
    if (call.operation === 'read' || call.operation === 'readBuffer') this.reads.push(call.key!);
    return next();
  }
}

export interface ImageBackend {
  label: string;
  /** The backend itself, for writes behind the layer's back (photos stored before it existed). */
  raw: MediaStorage;
  /** What the layer wraps: the backend, counted. */
  counted: CountingStorage;
  images: ImageStorage;
  /** GETs a URL the storage gave, relative ones against the test server. */
  fetch: (url: string) => Promise<Response>;
  /** The test server's origin; `/media/<key>` is the media handler over `images`. */
  origin: string;
  stop: () => Promise<void>;
}

export const VARIANTS: ImageOptions['variants'] = {
  avatar: { width: 64, height: 64, fit: 'cover', format: 'webp', densities: [1, 2] },
  card: { width: 320, format: 'jpeg', quality: 75 },
};

type Maker = () => Promise<{ raw: MediaStorage; fetch?: (url: string) => Promise<Response>; stop: () => Promise<void> }>;

const MAKERS: Array<[string, Maker]> = [
  ['memory', async () => ({ raw: new MemoryStorage(), stop: async () => {} })],
  [
    'local',
    async () => {
      const tmp = await tempDir('images-local');
      return { raw: new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false }), stop: tmp.remove };
    },
  ],
  [
    `s3 (${targetLabel})`,
    async () => {
      const target = await startS3Target('images');
      return { raw: target.storage({ visibility: 'public' }), stop: () => target.stop() };
    },
  ],
  [
    'b2 (fake B2, private bucket)',
    async () => {
      const fake = await startFakeB2({ buckets: { 'media-images': 'allPrivate' } });
      return {
        raw: new B2Storage({
          applicationKeyId: fake.applicationKeyId,
          applicationKey: fake.applicationKey,
          bucketName: 'media-images',
          location: 'media/',
          apiUrl: fake.authorizeUrl,
        }),
        stop: () => fake.close(),
      };
    },
  ],
  [
    'cloudinary (fake Cloudinary)',
    async () => {
      const fake = await new FakeCloudinary([{ cloudName: 'images-cloud', apiKey: '123456789012345', apiSecret: 'images-secret-abcdefghijkl' }]).start();
      const storage = new CloudinaryStorage({ cloudinaryUrl: fake.cloudinaryUrl('images-cloud'), folder: 'img', fetch: fake.fetch });
      return {
        raw: storage,
        fetch: fake.fetch,
        stop: async () => {
          storage.close();
          await fake.stop();
        },
      };
    },
  ],
];

export const BACKEND_LABELS = MAKERS.map(([label]) => label);

export async function startImageBackend(label: string, options: ImageOptions = { variants: VARIANTS }): Promise<ImageBackend> {
  const maker = MAKERS.find(([l]) => l === label)![1];
  const made = await maker();
  const counted = new CountingStorage(made.raw);
  const images = withImages(counted, options);
  const handler = createMediaHandler(images, { basePath: '/media' });
  const server = http.createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fetchUrl = made.fetch ?? ((url: string) => fetch(url));
  return {
    label,
    raw: made.raw,
    counted,
    images,
    origin,
    fetch: (url) => (url.startsWith('/') ? fetch(`${origin}${url}`) : fetchUrl(url)),
    stop: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await made.stop();
    },
  };
}
