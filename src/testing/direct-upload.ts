import { createHash } from 'node:crypto';
import type { DirectUpload } from '../core/types.js';

/** What {@link sendDirectUpload} may change, to play a browser that does not follow the request. */
export interface SendDirectUploadOptions {
  /** The fetch to send with; default the global one. */
  fetch?: (url: string, init?: RequestInit) => Promise<Response>;
  /** Declare this content type instead of the presigned one (Content-Type header, POST field and file type). */
  contentType?: string;
  /** The file name a POST carries; default the key's last segment. */
  filename?: string;
}

/**
 * Sends a {@link DirectUpload} from Node as a browser would (Node's fetch and FormData): the bytes
 * as the body with `headers`, or a multipart form of `fields` and then the file; `digestHeaders` are
 * computed from the bytes. For tests of apps that hand out direct uploads, and for the contract
 * suite.
 */
export async function sendDirectUpload(upload: DirectUpload, bytes: Uint8Array, options: SendDirectUploadOptions = {}): Promise<Response> {
  const body = new Uint8Array(bytes);
  const doFetch = options.fetch ?? ((url: string, init?: RequestInit) => fetch(url, init));
  const contentType = options.contentType ?? upload.contentType;
  const digests: Record<string, string> = {};
  for (const [name, algorithm] of Object.entries(upload.digestHeaders ?? {})) {
    if (algorithm === 'sha1-hex') digests[name] = createHash('sha1').update(bytes).digest('hex');
  }
  const retype = (values: Record<string, string>): Record<string, string> =>
    Object.fromEntries(
      Object.entries(values).map(([name, value]) => [name, name.toLowerCase() === 'content-type' && options.contentType !== undefined ? contentType : value]),
    );
  if (!upload.fields) {
    return doFetch(upload.url, { method: upload.method, headers: { ...retype(upload.headers), ...digests }, body });
  }
  const form = new FormData();
  for (const [name, value] of Object.entries(retype(upload.fields ?? {}))) form.append(name, value);
  form.append(upload.fileField ?? 'file', new Blob([body], { type: contentType }), options.filename ?? upload.key.slice(upload.key.lastIndexOf('/') + 1));
  return doFetch(upload.url, { method: 'POST', headers: { ...upload.headers, ...digests }, body: form });
}
