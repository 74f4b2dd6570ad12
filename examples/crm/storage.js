// The one place the CRM decides where photos live. Today: a folder on the local disk, served by
// the app itself. To move to S3, Cloudinary or B2, replace the body of createStorage() (e.g. with
// media-storage's createMediaStorageFromEnv() reading MEDIA_STORAGE_URL): nothing else changes.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LocalStorage } from 'media-storage/local';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * @returns {{ storage: import('media-storage').MediaStorage, servePath?: string, describe: string }}
 *   `storage` holds the photos; `servePath`, when set, is the URL path under which the app must
 *   serve them itself (local disk and memory); cloud stores give URLs of their own.
 */
export function createStorage(env = process.env) {
  const root = path.resolve(env.CRM_MEDIA_DIR ?? path.join(here, 'media'));
  const storage = new LocalStorage({ root, baseUrl: '/media' });
  return { storage, servePath: '/media', describe: `local disk at ${root}` };
}
