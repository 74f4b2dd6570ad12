/**
 * Listing and describing B2 files: b2_list_file_names pages behind opaque cursors, every version
 * of a name (b2_list_file_versions), and a file's description as ObjectInfo, from a listing's
 * JSON or a HEAD's headers.
 */
import { decodeCursor, encodeCursor } from '../core/cursor.js';
import { MediaStorageError } from '../core/errors.js';
import type { ListPage, ObjectInfo } from '../core/types.js';
import type { B2Session } from './auth.js';
import { decodeInfoHeader } from './file-info.js';
import type { B2FileJson } from './sdk.js';

/** fileInfo keys B2 reserves or we set ourselves; not user metadata. */
export const RESERVED_INFO = /^(b2-|large_file_sha1$|src_last_modified_millis$)/;

export function toObjectInfo(prefix: string, file: B2FileJson): ObjectInfo {
  const info = file.fileInfo ?? {};
  const sha1 = file.contentSha1 && file.contentSha1 !== 'none' ? file.contentSha1 : info.large_file_sha1;
  const metadata = Object.fromEntries(Object.entries(info).filter(([k]) => !RESERVED_INFO.test(k)));
  return {
    key: file.fileName.slice(prefix.length),
    size: file.contentLength,
    contentType: file.contentType ?? 'application/octet-stream',
    ...(sha1 ? { etag: sha1.replace(/^unverified:/, '') } : {}),
    lastModified: new Date(file.uploadTimestamp),
    ...(info['b2-cache-control'] ? { cacheControl: info['b2-cache-control'] } : {}),
    ...(Object.keys(metadata).length ? { metadata } : {}),
  };
}

/**
 * One page of b2_list_file_names under `fullPrefix` (hidden files left out); the cursor is the
 * next file name (core/cursor.ts), and must lie under the same prefix.
 */
export async function listFileNames(session: B2Session, prefix: string, fullPrefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
  const start = options.cursor ? decodeCursor(options.cursor) : fullPrefix;
  if (options.cursor && !start.startsWith(fullPrefix)) throw new MediaStorageError('INVALID_INPUT', 'The cursor does not belong to this listing');
  const page = await session.call('b2_list_file_names', (sdk) =>
    sdk.listFileNames({
      bucketId: session.bucketId!,
      prefix: fullPrefix,
      startFileName: start,
      maxFileCount: options.limit,
      axiosOverride: session.settings(),
    }),
  );
  const items = page.files.filter((f) => f.action === 'upload').map((f) => toObjectInfo(prefix, f));
  return page.nextFileName ? { items, cursor: encodeCursor(page.nextFileName) } : { items };
}

/** Every version of a name (uploads and hide markers), via b2_list_file_versions. */
export async function versionsOf(session: B2Session, name: string): Promise<B2FileJson[]> {
  const versions: B2FileJson[] = [];
  let startFileName = name;
  let startFileId: string | undefined;
  for (;;) {
    const page = await session.call('b2_list_file_versions', (sdk) =>
      sdk.listFileVersions({
        bucketId: session.bucketId!,
        startFileName,
        startFileId,
        maxFileCount: 100,
        axiosOverride: { ...session.settings(), data: { prefix: name } },
      }),
    );
    const mine = page.files.filter((f) => f.fileName === name);
    versions.push(...mine);
    if (!page.nextFileName || page.nextFileName !== name || !page.nextFileId || mine.length < page.files.length) return versions;
    startFileName = page.nextFileName;
    startFileId = page.nextFileId;
  }
}

/** The file a HEAD of b2_download_file_by_name describes in its headers. */
export function fileFromHeaders(name: string, bucketId: string, headers: Record<string, unknown>): B2FileJson {
  const header = (h: string): string | undefined => (typeof headers[h] === 'string' ? (headers[h] as string) : undefined);
  const fileInfo: Record<string, string> = {};
  for (const [h, v] of Object.entries(headers)) {
    if (h.startsWith('x-bz-info-') && typeof v === 'string') fileInfo[h.slice('x-bz-info-'.length)] = decodeInfoHeader(v);
  }
  // B2 serves b2-cache-control and b2-content-disposition as Cache-Control and Content-Disposition.
  const cacheControl = header('cache-control');
  if (cacheControl) fileInfo['b2-cache-control'] = cacheControl;
  const disposition = header('content-disposition');
  if (disposition) fileInfo['b2-content-disposition'] = disposition;
  return {
    action: 'upload',
    bucketId,
    fileId: header('x-bz-file-id') ?? '',
    fileName: name,
    contentLength: Number(header('content-length') ?? 0),
    contentSha1: header('x-bz-content-sha1') ?? null,
    contentType: header('content-type') ?? null,
    fileInfo,
    uploadTimestamp: Number(header('x-bz-upload-timestamp') ?? Date.now()),
  };
}
