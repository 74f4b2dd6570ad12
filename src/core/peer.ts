/**
 * Optional peer packages (SDKs, sharp), loaded on first use so that an app installs only what its
 * backend needs, and a missing one is a CONFIG error that says what to install instead of a bare
 * ERR_MODULE_NOT_FOUND.
 */
import { MediaStorageError } from './errors.js';

/** What needs a peer package, for the message: `{ packages: 'cloudinary', usedBy: 'CloudinaryStorage', backend: 'cloudinary' }`. */
export interface PeerPackage {
  /** The package (or packages, the first the one imported) to install. */
  packages: string | readonly string[];
  /** Who needs it, as the message names it: `media-storage/s3 (S3Storage)`, `The b2 backend`. */
  usedBy: string;
  /** The backend, for the error's `backend` field. */
  backend?: string;
}

function packagesOf(peer: PeerPackage): readonly string[] {
  return typeof peer.packages === 'string' ? [peer.packages] : peer.packages;
}

/**
 * The CONFIG error for `err` when it says one of `peer`'s packages is not installed ("Cannot find
 * package 'x'", CommonJS's "Cannot find module 'x'"); `undefined` for any other failure, which
 * the caller rethrows as it is (a package that is there but broken must not read as missing).
 */
export function missingPeerError(err: unknown, peer: PeerPackage): MediaStorageError | undefined {
  const e = err as { code?: unknown; message?: unknown } | null;
  if (e?.code !== 'ERR_MODULE_NOT_FOUND' && e?.code !== 'MODULE_NOT_FOUND') return undefined;
  if (typeof e.message !== 'string') return undefined;
  const packages = packagesOf(peer);
  const message = e.message;
  // Node quotes the specifier ("Cannot find package 'cloudinary' imported from …", "Cannot find
  // module 'x/sub'"); matching it quoted keeps a path that merely contains the name from counting.
  const missing = packages.find((pkg) => [`'${pkg}'`, `'${pkg}/`, `"${pkg}"`, `"${pkg}/`].some((quoted) => message.includes(quoted)));
  if (missing === undefined) return undefined;
  return new MediaStorageError('CONFIG', `${peer.usedBy} needs the package "${missing}", which is not installed: npm install ${packages.join(' ')}`, {
    ...(peer.backend ? { backend: peer.backend } : {}),
    operation: 'configure',
    cause: err,
  });
}

/** `await importPeer(() => import('cloudinary'), peer)`: the module, or the CONFIG error of {@link missingPeerError}. */
export async function importPeer<T>(importer: () => Promise<T>, peer: PeerPackage): Promise<T> {
  try {
    return await importer();
  } catch (err) {
    throw missingPeerError(err, peer) ?? err;
  }
}

/** The same for a synchronous load (`require` in a CommonJS build). */
export function requirePeer<T>(load: () => T, peer: PeerPackage): T {
  try {
    return load();
  } catch (err) {
    throw missingPeerError(err, peer) ?? err;
  }
}

/**
 * A loader that imports once and hands every caller the same module; a failed import is not
 * remembered, so installing the package and calling again works without a restart.
 */
export function lazyPeer<T>(importer: () => Promise<T>, peer: PeerPackage): () => Promise<T> {
  let loading: Promise<T> | undefined;
  return () => {
    loading ??= importPeer(importer, peer).catch((err: unknown) => {
      loading = undefined;
      throw err;
    });
    return loading;
  };
}
