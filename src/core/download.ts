/**
 * `url(key, { download })` read one way by every backend: `false`/absent is inline, `true` a
 * download under the key's own name, a string a download under that name.
 */
import { MediaStorageError } from './errors.js';
import type { UrlOptions } from './types.js';

/**
 * The file name `download` asks to save as: `undefined` for no download, `''` for `true` (the
 * key's own name, left to whoever serves it, as the media handler does). INVALID_INPUT for a
 * value that is neither a boolean nor a string.
 */
export function requestedDownload(download: UrlOptions['download']): string | undefined {
  if (download === undefined || download === false) return undefined;
  if (download === true) return '';
  if (typeof download !== 'string')
    throw new MediaStorageError('INVALID_INPUT', `download must be true, false or a file name, not ${typeof download}`, { operation: 'url' });
  return download;
}

/** As {@link requestedDownload}, with `true` spelled out as the key's last segment (for a store that needs the name in the URL). */
export function downloadFilename(download: UrlOptions['download'], key: string): string | undefined {
  const name = requestedDownload(download);
  return name === '' ? key.slice(key.lastIndexOf('/') + 1) : name;
}
