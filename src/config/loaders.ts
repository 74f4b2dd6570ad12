import { MediaStorageError } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';

type StorageClass = new (options: never) => MediaStorage;
export type BackendLoaders = Record<string, () => Promise<StorageClass>>;

/** Which npm packages each backend needs, for the "install it" message. */
export const BACKEND_PACKAGES: Record<string, string[]> = {
  local: [],
  memory: [],
  s3: ['@aws-sdk/client-s3', '@aws-sdk/s3-request-presigner'],
  cloudinary: ['cloudinary'],
  b2: ['backblaze-b2'],
  azure: ['@azure/storage-blob'],
};

/** Turns "Cannot find package 'cloudinary'" into a CONFIG error that says what to install. */
export function missingPeerError(backend: string, err: unknown): MediaStorageError | undefined {
  const e = err as { code?: string; message?: string };
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') return undefined;
  const needed = BACKEND_PACKAGES[backend] ?? [];
  const missing = needed.find((pkg) => e.message?.includes(`'${pkg}`) || e.message?.includes(`"${pkg}`)) ?? needed[0];
  if (!missing) return undefined;
  return new MediaStorageError('CONFIG', `The ${backend} backend needs the package "${missing}", which is not installed: npm install ${needed.join(' ')}`, {
    backend,
    operation: 'configure',
    cause: err,
  });
}

async function load(backend: string, importer: () => Promise<Record<string, unknown>>, exportName: string): Promise<StorageClass> {
  try {
    const mod = await importer();
    return mod[exportName] as StorageClass;
  } catch (err) {
    throw missingPeerError(backend, err) ?? err;
  }
}

/** Backends load lazily, so an app that uses one never loads (or installs) another's SDK. */
export const BACKEND_LOADERS: BackendLoaders = {
  local: () => load('local', () => import('../local/index.js'), 'LocalStorage'),
  memory: () => load('memory', () => import('../memory/index.js'), 'MemoryStorage'),
  s3: () => load('s3', () => import('../s3/index.js'), 'S3Storage'),
  cloudinary: () => load('cloudinary', () => import('../cloudinary/index.js'), 'CloudinaryStorage'),
  b2: () => load('b2', () => import('../b2/index.js'), 'B2Storage'),
  azure: () => load('azure', () => import('../azure/index.js'), 'AzureBlobStorage'),
};

export { load as loadBackend };
