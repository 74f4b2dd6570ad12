// The one place the CRM decides where photos live. Today: a folder on the local disk, served by
// the app itself. To move to S3, Cloudinary or B2, replace the body of createStorage() (e.g. with
// media-storage's createMediaStorageFromEnv() reading MEDIA_STORAGE_URL): nothing else changes.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStorage } from 'media-storage/local';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * @returns {{ storage: import('media-storage').MediaStorage, handler?: import('media-storage').MediaRequestHandler, describe: string }}
 *   `storage` holds the photos; `handler`, when present, serves them (local disk and memory
 *   backends serve themselves; cloud stores give URLs of their own).
 */
export function createStorage(env = process.env) {
  const root = path.resolve(env.CRM_MEDIA_DIR ?? path.join(here, 'media'));
  // no-cache: browsers revalidate (a cheap 304 by ETag), so a wiped file shows as the default at
  // once in this demo. Keys are unique per upload, so production may cache for much longer.
  const storage = new LocalStorage({ root, baseUrl: '/media', cacheControl: 'no-cache' });
  return { storage, handler: storage.handler(), describe: `local disk at ${root}` };
}
