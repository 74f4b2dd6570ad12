import { MediaStorageError, type MediaStorageErrorCode } from '../core/errors.js';

export function isCode(err: unknown, ...codes: string[]): boolean {
  return typeof err === 'object' && err !== null && codes.includes((err as { code?: string }).code ?? '');
}

export function notFound(key: string): MediaStorageError {
  return new MediaStorageError('NOT_FOUND', `No object under "${key}"`, { key });
}

/** Node's file-system errors that mean something about the key (the rest go through the core's mapping). */
export function mapLocalError(err: unknown, operation: string): { code: MediaStorageErrorCode; message?: string } | undefined {
  if (operation === 'save' || operation === 'copy') {
    if (isCode(err, 'EISDIR', 'ENOTEMPTY')) return { code: 'INVALID_KEY', message: 'a folder already exists at this key' };
    if (isCode(err, 'ENOTDIR', 'EEXIST')) return { code: 'INVALID_KEY', message: 'a file already exists where this key needs a folder' };
  }
  return undefined;
}
