import type { S3Client } from './sdk.js';
import { ListObjectsV2Command } from './sdk.js';
import type { ListPage, ObjectInfo, SkippedObject } from '../core/types.js';
import { MAX_KEYS_PER_REQUEST } from './config.js';
import { unquote } from './upload.js';

/** A listed name from a URL-encoded listing (`+` is a space, as S3 encodes it); undefined when it is not valid UTF-8. */
function decodeListedName(encoded: string): string | undefined {
  try {
    return decodeURIComponent(encoded.replace(/\+/g, ' '));
  } catch {
    return undefined;
  }
}

/**
 * One page of keys under `location + prefix`, from as many ListObjectsV2 requests as `limit`
 * needs; the cursor is S3's continuation token. `typeFromKey` guesses the type a listing lacks.
 */
export async function listPage(
  client: S3Client,
  bucket: string,
  location: string,
  typeFromKey: (key: string) => string,
  prefix: string,
  options: { cursor?: string; limit: number },
): Promise<ListPage> {
  const items: ObjectInfo[] = [];
  const skipped: SkippedObject[] = [];
  let token = options.cursor;
  do {
    const page = await client.send(
      new ListObjectsV2Command({
        Bucket: bucket,
        Prefix: location + prefix,
        MaxKeys: Math.min(MAX_KEYS_PER_REQUEST, options.limit - items.length),
        ContinuationToken: token,
        // Names other software wrote may hold characters XML 1.0 cannot carry (U+0001...): asked
        // URL-encoded, every name arrives, and the core decides which are keys.
        EncodingType: 'url',
      }),
    );
    // A server that ignores EncodingType (s3rver) says so by not echoing it.
    const encoded = page.EncodingType === 'url';
    for (const object of page.Contents ?? []) {
      if (object.Key === undefined) continue;
      const name = encoded ? decodeListedName(object.Key) : object.Key;
      if (name === undefined) {
        skipped.push({
          name: object.Key.slice(location.length),
          reason: 'invalid-key',
          message: 'its name is not valid UTF-8 (shown URL-encoded)',
          size: object.Size,
        });
        continue;
      }
      const key = name.slice(location.length);
      items.push({
        key,
        size: object.Size ?? 0,
        // Listings carry no content type: guessed from the extension (stat gives the stored one).
        contentType: typeFromKey(key),
        etag: unquote(object.ETag),
        lastModified: object.LastModified,
      });
    }
    token = page.IsTruncated ? page.NextContinuationToken : undefined;
  } while (token && items.length < options.limit);
  return { items, ...(token ? { cursor: token } : {}), ...(skipped.length > 0 ? { skipped } : {}) };
}
