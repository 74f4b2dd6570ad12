/**
 * Uploads: one signed multipart `upload_stream` request for a body that fits in a chunk, and
 * Cloudinary's chunked upload protocol for larger ones; plus the asset folder an upload gets in
 * dynamic folder mode.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { abortedError } from '../core/errors.js';
import { CloudinaryApiError, fromSdkRejection } from './errors.js';
import type { PeekableBody } from '../core/body.js';
import type { AssetRef } from './mapping.js';
import { loadSdk, type CloudinaryClient, type UploadResult } from './sdk.js';

// The chunk sizes are the definition's (the chunkSize option's default and range).
export { DEFAULT_CHUNK_SIZE, MIN_CHUNK_SIZE } from './definition.js';
/** After a failed folder-mode lookup, saves go without asset_folder for this long before asking again. */
const FOLDER_MODE_RETRY_MS = 60_000;

/** How an upload treats an existing asset, and (dynamic folder mode) which asset folder it goes in. */
export interface UploadPlan {
  overwrite: boolean;
  assetFolder?: string;
}

/** Sends bodies to the Upload API for one storage. */
export class Uploader {
  private folderModeLookup: Promise<'fixed' | 'dynamic' | undefined> | undefined;
  private folderModeRetryAt = 0;

  constructor(
    private readonly client: CloudinaryClient,
    /** Bodies larger than this go through chunked upload, in chunks of this size. */
    readonly chunkSize: number,
    private folderMode: 'fixed' | 'dynamic' | undefined,
  ) {}

  /**
   * Sends the body: one multipart upload_stream when it fits in `chunkSize`, the chunked upload
   * protocol otherwise. A body of unknown length is read up to `chunkSize` bytes to decide, so
   * memory stays bounded (about one chunk read ahead) either way. `whole` is the body when it was read entirely.
   */
  async upload(
    target: AssetRef,
    reader: PeekableBody,
    size: number | undefined,
    plan: UploadPlan,
    signal?: AbortSignal,
  ): Promise<{ result: UploadResult; whole?: Buffer }> {
    if (size !== undefined && size <= this.chunkSize) {
      const whole = reader.ended ? reader.whole() : undefined;
      return { result: await this.uploadStream(target, whole ?? reader.stream(), plan, signal), whole };
    }
    await reader.fill(this.chunkSize + 1);
    if (reader.ended) {
      const whole = reader.whole();
      return { result: await this.uploadStream(target, whole, plan, signal), whole };
    }
    return { result: await this.uploadChunked(target, reader.stream(), plan, signal) };
  }

  /** Sends a body held in memory, chunked when it is larger than a chunk. */
  async uploadBuffer(target: AssetRef, whole: Buffer, plan: UploadPlan, signal?: AbortSignal): Promise<UploadResult> {
    return whole.length > this.chunkSize ? this.uploadChunked(target, Readable.from([whole]), plan, signal) : this.uploadStream(target, whole, plan, signal);
  }

  private uploadParams(target: AssetRef, plan: UploadPlan): Record<string, unknown> {
    return this.client.callOptions({
      resource_type: target.resourceType,
      type: this.client.deliveryType,
      public_id: target.publicId,
      overwrite: plan.overwrite,
      // A replaced asset must not be served stale from the CDN (nor a 404 cached before it).
      invalidate: plan.overwrite,
      ...(plan.assetFolder !== undefined ? { asset_folder: plan.assetFolder } : {}),
      unique_filename: false,
      use_filename: false,
      // Callbacks only: the SDK's promises are not needed and would outlive aborted uploads.
      disable_promises: true,
    });
  }

  /**
   * Cloudinary's chunked upload: every chunk is one signed upload_stream request carrying the
   * same X-Unique-Upload-Id and its Content-Range (`bytes start-end/-1`, the last one `/total`);
   * the asset appears only when the last chunk arrives. The SDK's upload_chunked_stream does the
   * same but copies its whole buffer on every write (quadratic in the number of writes); here a
   * chunk's pieces are written as they were read, and nothing is sent for a chunk until it is
   * complete, so a body that fails or is aborted never gets its last chunk.
   */
  private async uploadChunked(target: AssetRef, source: Readable, plan: UploadPlan, signal?: AbortSignal): Promise<UploadResult> {
    const uploadId = randomBytes(12).toString('hex');
    const iterator = source[Symbol.asyncIterator]();
    const pending: Buffer[] = [];
    let pendingBytes = 0;
    let ended = false;
    let offset = 0;
    for (;;) {
      while (!ended && pendingBytes <= this.chunkSize) {
        const next = await iterator.next();
        if (next.done) ended = true;
        else {
          pending.push(next.value as Buffer);
          pendingBytes += (next.value as Buffer).length;
        }
      }
      const last = ended && pendingBytes <= this.chunkSize;
      const take = last ? pendingBytes : this.chunkSize;
      const parts: Buffer[] = [];
      let taken = 0;
      while (taken < take) {
        const piece = pending.shift()!;
        const need = take - taken;
        if (piece.length > need) {
          parts.push(piece.subarray(0, need));
          pending.unshift(piece.subarray(need));
          taken = take;
        } else {
          parts.push(piece);
          taken += piece.length;
        }
      }
      pendingBytes -= take;
      const range = `bytes ${offset}-${offset + take - 1}/${last ? offset + take : -1}`;
      const result = await this.uploadStream(target, parts, plan, signal, { content_range: range, x_unique_upload_id: uploadId }, last);
      offset += take;
      if (last) return result;
    }
  }

  /**
   * One SDK upload_stream request, on its own agent so that an abort or a broken body can cut the
   * connection: the server then never sees the closing multipart boundary, and stores nothing.
   */
  private async uploadStream(
    target: AssetRef,
    source: Readable | Buffer | Buffer[],
    plan: UploadPlan,
    signal: AbortSignal | undefined,
    extra: Record<string, unknown> = {},
    final = true,
  ): Promise<UploadResult> {
    return this.client.call(async (sdk) => {
      if (signal?.aborted) throw abortedError('save', undefined, 'cloudinary', signal.reason);
      // Behind the SDK's own proxy an abort cannot cut the socket; the body stays incomplete, so
      // nothing is stored either, and the request ends at the timeout.
      const agent = this.client.sdkUsesProxy(sdk) ? undefined : this.client.newAgent(false);
      const params = { ...this.uploadParams(target, plan), ...(agent ? { agent: this.client.forSdk(agent) } : {}), ...extra };
      try {
        return await new Promise<UploadResult>((resolve, reject) => {
          let settled = false;
          const settle = (err: unknown, result?: UploadResult): void => {
            if (settled) return;
            settled = true;
            signal?.removeEventListener('abort', onAbort);
            if (err) reject(err);
            else resolve(result!);
          };
          const onAbort = (): void => {
            agent?.destroy();
            settle(abortedError('save', undefined, 'cloudinary', signal?.reason));
          };
          signal?.addEventListener('abort', onAbort, { once: true });
          const callback = (error: unknown, result?: UploadResult): void => {
            if (error) settle(fromSdkRejection(error));
            // Only the last chunk's answer describes the asset.
            else if (final && (!result || typeof result.public_id !== 'string'))
              settle(new CloudinaryApiError('upload answered without a public_id', undefined));
            else settle(undefined, result);
          };
          const sink = sdk.uploader.upload_stream(params, callback);
          if (Buffer.isBuffer(source)) {
            sink.end(source);
          } else {
            // Pieces go out as the socket takes them: queuing a whole chunk at once makes Node copy
            // it into one native buffer for the socket write, which RSS shows and GC does not see.
            pipeline(Array.isArray(source) ? Readable.from(source, { objectMode: false }) : source, sink).catch((err: unknown) => {
              // Cut the request before the body is complete: nothing becomes visible.
              agent?.destroy();
              settle(err);
            });
          }
        });
      } finally {
        agent?.destroy();
      }
    });
  }

  /**
   * The signed form fields of a direct (browser) upload, and where to post them. Cloudinary
   * enforces what is signed: the public ID and resource type, `overwrite`, the delivery type and
   * `allowed_formats`.
   */
  async signedForm(
    target: AssetRef,
    form: { timestamp: number; overwrite: boolean; allowedFormat?: string },
  ): Promise<{ url: string; fields: Record<string, string> }> {
    const assetFolder = await this.assetFolderOf(target);
    const params: Record<string, string> = {
      timestamp: String(form.timestamp),
      public_id: target.publicId,
      type: this.client.deliveryType,
      overwrite: String(form.overwrite),
      ...(form.overwrite ? { invalidate: 'true' } : {}),
      ...(form.allowedFormat !== undefined ? { allowed_formats: form.allowedFormat } : {}),
      ...(assetFolder !== undefined ? { asset_folder: assetFolder } : {}),
    };
    const sdk = await loadSdk();
    const c = this.client.config;
    const signed = sdk.utils.sign_request(params, { api_key: c.apiKey, api_secret: c.apiSecret, signature_algorithm: c.signatureAlgorithm });
    const fields = Object.fromEntries(Object.entries(signed).map(([name, value]) => [name, String(value)]));
    return { url: `${c.uploadPrefix.replace(/\/+$/, '')}/v1_1/${encodeURIComponent(c.cloudName)}/${target.resourceType}/upload`, fields };
  }

  /** The asset folder of an upload in dynamic folder mode: the folder part of its public ID. */
  async assetFolderOf(target: AssetRef): Promise<string | undefined> {
    if ((await this.currentFolderMode()) !== 'dynamic') return undefined;
    const slash = target.publicId.lastIndexOf('/');
    return slash > 0 ? target.publicId.slice(0, slash) : undefined;
  }

  /**
   * The product environment's folder mode, asked once (Admin API `GET /config?settings=true`)
   * unless configured. `undefined` when it cannot be known now: the upload then sets no
   * asset_folder, which both modes accept.
   */
  private async currentFolderMode(): Promise<'fixed' | 'dynamic' | undefined> {
    if (this.folderMode || Date.now() < this.folderModeRetryAt) return this.folderMode;
    this.folderModeLookup ??= this.client
      .call((sdk) => sdk.api.config(this.client.callOptions({ settings: true })))
      .then(
        (answer) => {
          this.client.noteRateLimit(answer);
          this.folderMode = answer.settings?.folder_mode === 'dynamic' ? 'dynamic' : 'fixed';
          return this.folderMode;
        },
        () => {
          this.folderModeRetryAt = Date.now() + FOLDER_MODE_RETRY_MS;
          return undefined;
        },
      )
      .finally(() => {
        this.folderModeLookup = undefined;
      });
    return this.folderModeLookup;
  }
}
