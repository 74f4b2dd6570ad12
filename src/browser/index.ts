/**
 * `media-storage/browser`: sends a direct upload (what `storage.presignUpload` gives, passed to
 * the page as JSON) from a browser, with progress and abort. Dependency-free, ESM, and free of
 * Node APIs; it uses XMLHttpRequest, the one browser API that reports upload progress.
 *
 * ```js
 * import { uploadFile } from 'media-storage/browser';
 * const upload = await (await fetch('/uploads/presign', { method: 'POST', body: ... })).json();
 * await uploadFile(upload, input.files[0], { onProgress: ({ loaded, total }) => bar.value = loaded / total });
 * ```
 */

/** The part of a `DirectUpload` (see `media-storage`) the browser needs; JSON round trips keep it. */
export interface DirectUploadRequest {
  method: 'PUT' | 'POST';
  url: string;
  headers?: Record<string, string>;
  /** Present when the body is multipart/form-data: these fields in order, then the file. */
  fields?: Record<string, string>;
  /** The form field the file goes in; default `file`. */
  fileField?: string;
  /** Headers computed from the file's bytes (`sha1-hex`: B2's X-Bz-Content-Sha1). */
  digestHeaders?: Record<string, 'sha1-hex'>;
  /** The content type the upload was signed for; sent with the file. */
  contentType?: string;
  key?: string;
}

/** How far a direct upload's request body has been sent, as passed to {@link UploadFileOptions.onProgress}. */
export interface UploadProgress {
  /** Bytes of the request body sent so far. */
  loaded: number;
  /** The request body's size (the file, plus form fields for a multipart upload). */
  total: number;
}

/** Options of {@link uploadFile}: upload progress and abort. */
export interface UploadFileOptions {
  /** Called as the request body is sent (XMLHttpRequest's upload progress events). */
  onProgress?: (progress: UploadProgress) => void;
  /** Aborts the request; the promise rejects with an `AbortError` DOMException and the store keeps nothing. */
  signal?: AbortSignal;
}

/** What the store answered to an accepted upload. */
export interface UploadResponse {
  status: number;
  /** The response body as text (JSON for the media handler, Cloudinary and B2; XML or empty for S3). */
  body: string;
}

/** The store refused the upload (403 expired or forged, 413 too large, 415 or 400 another type...). */
export class DirectUploadError extends Error {
  override readonly name = 'DirectUploadError';
  constructor(
    readonly status: number,
    readonly body: string,
  ) {
    super(
      status === 0 ? 'The upload failed: the network request did not complete (offline, or refused by CORS?)' : `The upload was refused with HTTP ${status}`,
    );
  }
}

function abortError(): DOMException {
  return new DOMException('The upload was aborted', 'AbortError');
}

async function sha1Hex(file: Blob): Promise<string> {
  // WebCrypto hashes whole buffers only: the file is read once, into memory, for its digest.
  const digest = await crypto.subtle.digest('SHA-1', await file.arrayBuffer());
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * Sends `file` as the direct upload `upload` describes: the file as the body with `headers`, or a
 * multipart form of `fields` then the file. Resolves with the store's answer when it accepted the
 * upload (2xx); rejects with {@link DirectUploadError} when it refused it, and with an
 * `AbortError` when `signal` fired.
 */
export async function uploadFile(upload: DirectUploadRequest, file: Blob, options: UploadFileOptions = {}): Promise<UploadResponse> {
  const { signal, onProgress } = options;
  if (signal?.aborted) throw abortError();
  const headers: Record<string, string> = { ...(upload.headers ?? {}) };
  for (const [name, algorithm] of Object.entries(upload.digestHeaders ?? {})) {
    if (algorithm !== 'sha1-hex') throw new Error(`media-storage/browser: unknown digest ${String(algorithm)}`);
    headers[name] = await sha1Hex(file);
  }
  if (signal?.aborted) throw abortError();
  let body: Blob | FormData = file;
  if (upload.fields) {
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields)) form.append(name, value);
    const filename = (upload.key ?? 'file').slice((upload.key ?? '').lastIndexOf('/') + 1) || 'file';
    form.append(upload.fileField ?? 'file', file, (file as File).name || filename);
    body = form;
  }
  return new Promise<UploadResponse>((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open(upload.method, upload.url);
    for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => onProgress?.({ loaded: event.loaded, total: event.lengthComputable ? event.total : file.size });
    const onAbort = (): void => xhr.abort();
    signal?.addEventListener('abort', onAbort, { once: true });
    const done = (): void => signal?.removeEventListener('abort', onAbort);
    xhr.onload = () => {
      done();
      if (xhr.status >= 200 && xhr.status < 300) resolve({ status: xhr.status, body: xhr.responseText });
      else reject(new DirectUploadError(xhr.status, xhr.responseText));
    };
    xhr.onerror = () => {
      done();
      reject(new DirectUploadError(0, ''));
    };
    xhr.onabort = () => {
      done();
      reject(abortError());
    };
    xhr.send(body);
  });
}
