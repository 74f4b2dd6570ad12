/**
 * Direct uploads (a browser sends a file straight to the store): what every backend shares. The
 * shape is {@link DirectUpload}; `BaseStorage.presignUpload` checks the options once, and each
 * backend's `presignObjectUpload` signs the request its store understands.
 */
import { MediaStorageError } from './errors.js';
import type { UrlSigner } from './signed-url.js';
import type { DirectUpload, DirectUploadOptions, MediaStorage } from './types.js';

/** What a backend's `presignObjectUpload` is given: options checked, the type decided by the serving rules. */
export interface PresignPlan {
  /** The Content-Type the browser must declare, and that is stored (executable kinds already `application/octet-stream`). */
  contentType: string;
  /** The Content-Disposition the serving rules store with the object (`attachment; filename=...`), or undefined for inline types. */
  contentDisposition: string | undefined;
  /** Seconds the request stays valid (checked against `capabilities.maxUploadExpiresIn`). */
  expiresIn: number;
  maxSize: number | undefined;
}

/** Default lifetime of a direct upload request: one hour. */
export const DEFAULT_UPLOAD_EXPIRES_IN = 3600;

/**
 * `storage.presignUpload(key, options)` for any MediaStorage (a wrapper, a plugin): UNSUPPORTED
 * when it has no direct uploads.
 */
export function presignUploadOf(storage: MediaStorage, key: string, options?: DirectUploadOptions): Promise<DirectUpload> {
  if (!storage.capabilities.directUploads || typeof storage.presignUpload !== 'function') {
    return Promise.reject(
      new MediaStorageError('UNSUPPORTED', `${storage.name}: this storage has no direct uploads (capabilities.directUploads)`, {
        backend: storage.name,
        key,
        operation: 'presignUpload',
      }),
    );
  }
  return storage.presignUpload(key, options);
}

/**
 * The direct upload of a storage served by the media handler (local disk, memory): a `PUT` to the
 * object's own URL with an upload signature, which the handler checks (see upload-handler.ts).
 * The handler enforces everything: key, type, size and expiry.
 */
export function handlerUpload(signer: UrlSigner, objectUrl: string, key: string, plan: PresignPlan): DirectUpload {
  const { url, expiresAt } = signer.signUploadUrl(objectUrl, key, plan.expiresIn, plan.contentType, plan.maxSize);
  return {
    method: 'PUT',
    url,
    headers: { 'Content-Type': plan.contentType },
    key,
    contentType: plan.contentType,
    expiresAt,
    enforced: { key: true, contentType: true, maxSize: plan.maxSize !== undefined, expiry: true },
  };
}
