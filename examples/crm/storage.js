// The one place the CRM decides where photos live. With no configuration: a folder on the local
// disk, served by the app itself. With MEDIA_STORAGE_URL (or AWS_*, CLOUDINARY_URL, B2_*), the
// storage those name: nothing else in the app changes.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { configFromEnv, createMediaStorage, describeConfig } from 'media-storage';

const here = path.dirname(fileURLToPath(import.meta.url));

/**
 * @returns {Promise<{ storage: import('media-storage').MediaStorage, servePath?: string, describe: string }>}
 *   `storage` holds the photos; `servePath`, when set, is the URL path under which the app must
 *   serve them itself (local disk and memory); cloud stores give URLs of their own.
 */
export async function createStorage(env = process.env) {
  const config = configFromEnv(env);
  if (config.backend === 'local' && !env.MEDIA_ROOT) {
    // The example keeps its photos beside itself unless told otherwise.
    config.root = path.resolve(env.CRM_MEDIA_DIR ?? path.join(here, 'media'));
  }
  const storage = await createMediaStorage(config);
  const selfServed = config.backend === 'local' || config.backend === 'memory';
  const describe = config.backend === 'local' ? `local disk at ${path.resolve(config.root)}` : `${config.backend} ${JSON.stringify(describeConfig(config))}`;
  return { storage, servePath: selfServed ? (config.publicBaseUrl ?? '/media') : undefined, describe };
}
