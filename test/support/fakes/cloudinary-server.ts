/**
 * A fake Cloudinary for tests, written from Cloudinary's Upload API, Admin API, authentication
 * (signatures), delivery URL and CDN documentation. One HTTP server plays both hosts:
 *
 * - the API host (what `upload_prefix` points at): `/v1_1/:cloud/:resource_type/upload` (multipart,
 *   chunked with X-Unique-Upload-Id and Content-Range), `/explicit`, `/destroy`, `/download`
 *   (private download URLs with `expires_at`), and the Admin API `/v1_1/:cloud/resources/...` and
 *   `/v1_1/:cloud/config` (Basic auth);
 * - the delivery host (res.cloudinary.com), behind a model of its CDN:
 *   `/:cloud/:resource_type/:type/[s--SIG--/][transformation/][vN/]public_id[.ext]`, GET and HEAD,
 *   Range, 404 with X-Cld-Error; every answer is cached per exact URL (40x answers for 1 minute,
 *   doubling per repeated failure up to 24 hours), and `invalidate` purges an asset's URLs only
 *   after a propagation delay.
 *
 * It applies Cloudinary's public-ID naming rules (forbidden characters refused, other special
 * characters replaced with `_`, no `v<digits>` folders), and models both folder modes (fixed:
 * folders are public-ID paths; dynamic: `asset_folder` and `display_name` apart from the public
 * ID). It checks what arrives the way Cloudinary does: API signatures (SHA-1 or SHA-256, signature
 * version 2), the timestamp window, the api_key, Basic auth, and delivery signatures of
 * `authenticated` assets. It renders the image transformations media-storage/images uses
 * (resizing, cropping, padding, format and quality: ./cloudinary-transform.ts); for any other
 * transformation it serves the original bytes. Either way it echoes the transformation it parsed
 * in `X-Fake-Transformation`.
 *
 * Every behaviour, the page it comes from, and what is not modelled: ./cloudinary-server.md.
 */
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';
import mime from 'mime-types';
import { renderTransformation } from './cloudinary-transform.js';

export interface FakeAccount {
  cloudName: string;
  apiKey: string;
  apiSecret: string;
  /** `fixed` (public-ID paths are the folders; accounts made before June 2024) or `dynamic` (the default since). Default `fixed`. */
  folderMode?: 'fixed' | 'dynamic';
}

export interface StoredAsset {
  publicId: string;
  resourceType: 'image' | 'video' | 'raw';
  type: string;
  format: string;
  bytes: Buffer;
  version: number;
  createdAt: Date;
  etag: string;
  context?: string;
  /** Dynamic folder mode: the Media Library folder and name, apart from the public ID. */
  assetFolder?: string;
  displayName?: string;
  /** The file name the upload carried (multipart `filename`), without extension. */
  originalFilename?: string;
}

/** A delivery answer as the CDN keeps it: the status, and for a 200 the asset as it was then. */
interface CdnEntry {
  status: number;
  headers: Record<string, string>;
  asset?: StoredAsset;
  disposition?: string;
  transformation?: string;
  cachedAt: number;
  expiresAt: number;
  /** The asset this URL names (`cloud|resource_type|type|public_id`): what an invalidation purges. */
  surrogate?: string;
}

interface SignedForm {
  fields: Record<string, string>;
  file?: Buffer;
  /** The file part's name (Content-Disposition filename), what `use_filename` builds on. */
  filename?: string;
}

interface ChunkSession {
  parts: Map<number, Buffer>;
  total?: number;
}

const SIGNATURE_WINDOW_SECONDS = 3600;
const MAX_RESULTS_LIMIT = 500;
const MAX_PUBLIC_ID_CHARS = 255;
const MIN_CHUNK_BYTES = 5 * 1024 * 1024;
/** The delivery types an upload may have (private and authenticated need signed URLs). */
const DELIVERY_TYPES = new Set(['upload', 'private', 'authenticated']);
/** CDN cache lifetimes: a successful answer (Cache-Control max-age, 30 days), the first cached 40x, the longest. */
const CDN_OK_TTL_MS = 30 * 24 * 3600_000;
const CDN_FIRST_ERROR_TTL_MS = 60_000;
const CDN_MAX_ERROR_TTL_MS = 24 * 3600_000;
/** Default time an invalidation takes to reach the CDN ("a few minutes, up to an hour"). */
const DEFAULT_INVALIDATION_DELAY_MS = 5 * 60_000;

// Magic numbers of the formats the fake accepts as images and videos (Cloudinary refuses other
// bytes with "Invalid image file").
const IMAGE_MAGIC: Array<[string, number[], number?]> = [
  ['jpg', [0xff, 0xd8, 0xff]],
  ['png', [0x89, 0x50, 0x4e, 0x47]],
  ['gif', [0x47, 0x49, 0x46, 0x38]],
  ['bmp', [0x42, 0x4d]],
  ['tiff', [0x49, 0x49, 0x2a, 0x00]],
  ['tiff', [0x4d, 0x4d, 0x00, 0x2a]],
  ['ico', [0x00, 0x00, 0x01, 0x00]],
  // Cloudinary accepts PDF documents as image assets (format pdf, one page per frame).
  ['pdf', [0x25, 0x50, 0x44, 0x46, 0x2d]],
];

function startsWith(data: Buffer, bytes: number[], offset = 0): boolean {
  return data.length >= offset + bytes.length && bytes.every((b, i) => data[offset + i] === b);
}

function imageFormat(data: Buffer): string | undefined {
  for (const [format, magic] of IMAGE_MAGIC) if (startsWith(data, magic)) return format;
  if (data.subarray(0, 4).toString('latin1') === 'RIFF' && data.subarray(8, 12).toString('latin1') === 'WEBP') return 'webp';
  if (data.subarray(4, 8).toString('latin1') === 'ftyp') {
    const brand = data.subarray(8, 12).toString('latin1');
    if (brand === 'avif') return 'avif';
    if (brand === 'heic') return 'heic';
  }
  return undefined;
}

function videoFormat(data: Buffer): string | undefined {
  if (data.subarray(4, 8).toString('latin1') === 'ftyp') {
    const brand = data.subarray(8, 12).toString('latin1');
    if (brand.startsWith('qt')) return 'mov';
    if (brand.startsWith('M4A')) return 'm4a';
    return 'mp4';
  }
  if (startsWith(data, [0x1a, 0x45, 0xdf, 0xa3])) return 'webm';
  if (startsWith(data, [0x49, 0x44, 0x33]) || startsWith(data, [0xff, 0xfb])) return 'mp3';
  if (startsWith(data, [0x4f, 0x67, 0x67, 0x53])) return 'ogg';
  if (startsWith(data, [0x66, 0x4c, 0x61, 0x43])) return 'flac';
  if (data.subarray(0, 4).toString('latin1') === 'RIFF' && data.subarray(8, 12).toString('latin1') === 'WAVE') return 'wav';
  return undefined;
}

const FORMAT_TYPES: Record<string, string> = {
  jpg: 'image/jpeg',
  png: 'image/png',
  gif: 'image/gif',
  webp: 'image/webp',
  avif: 'image/avif',
  bmp: 'image/bmp',
  tiff: 'image/tiff',
  ico: 'image/x-icon',
  heic: 'image/heic',
  pdf: 'application/pdf',
  mp4: 'video/mp4',
  webm: 'video/webm',
  mov: 'video/quicktime',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  flac: 'audio/flac',
  wav: 'audio/wav',
  m4a: 'audio/mp4',
};

/** The string Cloudinary signs for API calls (signature version 2). */
export function apiStringToSign(params: Record<string, string>): string {
  return Object.keys(params)
    .filter((k) => params[k] !== undefined && params[k] !== '')
    .sort()
    .map((k) => `${k}=${params[k]}`.replace(/&/g, '%26'))
    .join('&');
}

function hashHex(input: string, algorithm: 'sha1' | 'sha256'): string {
  return createHash(algorithm).update(input).digest('hex');
}

/** The `s--XXXXXXXX--` component Cloudinary expects for a delivery path (what follows the signature, without version). */
export function deliverySignature(toSign: string, secret: string, algorithm: 'sha1' | 'sha256' = 'sha1', length = 8): string {
  const b64 = createHash(algorithm)
    .update(toSign + secret)
    .digest('base64');
  return b64.slice(0, length).replace(/\//g, '_').replace(/\+/g, '-');
}

/** Header values are Latin-1: a public ID with other characters is percent-encoded in X-Cld-Error. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (ch) => encodeURIComponent(ch));
}

function sdkEncodePath(decoded: string): string {
  return encodeURIComponent(decoded).replace(/%3A/g, ':').replace(/%2F/g, '/');
}

function truthy(value: string | undefined): boolean {
  return value === 'true' || value === '1';
}

// Public-ID naming ("Permitted naming conventions"): `?&#\%<>+` are refused; letters of any
// language, digits, `.`, `-` (and `_`, `/`) are kept; every other character is "special": replaced
// with `_`, or cut off where it leads or trails. Read strictly: space, `~` and all other punctuation
// and symbols are special.
const FORBIDDEN = /[?&#\\%<>+]/u;
const KEPT = /^[\p{L}\p{M}\p{Nd}._\-/]$/u;

/**
 * What Cloudinary makes of a requested public ID: the public ID it stores, or the 400 message.
 * `extraSpecial` marks more characters special (the docs warn that these rules change).
 */
export function applyPublicIdRules(requested: string, extraSpecial?: RegExp): { publicId: string } | { error: string } {
  const invalid = { error: `public_id (${requested}) is invalid` };
  if (FORBIDDEN.test(requested)) return invalid;
  const special = (ch: string): boolean => !KEPT.test(ch) || (extraSpecial?.test(ch) ?? false);
  // Leading and trailing whitespace and slashes are omitted, then leading and trailing special characters.
  let chars = Array.from(requested.replace(/^[\s/]+|[\s/]+$/gu, ''));
  while (chars.length > 0 && chars[0] !== '/' && special(chars[0]!)) chars.shift();
  while (chars.length > 0 && chars[chars.length - 1] !== '/' && special(chars[chars.length - 1]!)) chars.pop();
  chars = chars.map((ch) => (ch !== '/' && special(ch) ? '_' : ch));
  const publicId = chars.join('');
  if (chars.length === 0 || chars.length > MAX_PUBLIC_ID_CHARS) return invalid;
  const segments = publicId.split('/');
  if (segments.some((seg) => seg === '')) return invalid;
  // "You can't use 'v' followed by numeric characters as the name of a folder."
  if (segments.slice(0, -1).some((seg) => /^v\p{Nd}+$/u.test(seg)))
    return { error: `public_id (${requested}) is invalid: a folder cannot be named v followed by digits` };
  return { publicId };
}

/** Six random lowercase letters and digits, as `unique_filename` appends. */
function uniqueSuffix(): string {
  const alphabet = 'abcdefghijklmnopqrstuvwxyz0123456789';
  return Array.from(randomBytes(6), (b) => alphabet[b % alphabet.length]).join('');
}

export interface RateLimitState {
  limit: number;
  remaining: number;
  resetAt: Date;
}

export class FakeCloudinary {
  readonly accounts = new Map<string, FakeAccount>();
  /** `${cloud}|${resourceType}|${type}|${publicId}` → asset. */
  readonly assets = new Map<string, StoredAsset>();
  private readonly chunkSessions = new Map<string, ChunkSession>();
  private server?: http.Server;
  url = '';

  /** Requests counted by kind, for tests that must prove what was (not) called. `cdnHits`: delivery requests the CDN answered from its cache. */
  readonly counts = {
    admin: 0,
    upload: 0,
    uploadChunks: 0,
    explicit: 0,
    destroy: 0,
    download: 0,
    deliveryGet: 0,
    deliveryHead: 0,
    cdnHits: 0,
    rejectedSignatures: 0,
    incompleteBodies: 0,
  };
  /** Log of destroy calls: `invalidate` must be sent so CDN copies do not outlive an asset. */
  readonly destroys: Array<{ publicId: string; resourceType: string; type: string; invalidate: boolean }> = [];
  /** Admin API budget; every Admin API call spends one, and at zero the fake answers 420. */
  readonly rateLimit: RateLimitState = { limit: 500, remaining: 500, resetAt: new Date(Date.now() + 3600_000) };
  /** When set, the named API answers 420 until the reset time (Cloudinary's "Rate Limit Exceeded"). */
  rateLimited: { admin?: boolean; upload?: boolean } = {};
  /** Upload API upload requests (plain uploads and chunks) seen so far. */
  uploadRequests = 0;
  /** The upload request with this number (see uploadRequests) answers 500: a server fault halfway through an upload. */
  failUploadRequest: number | undefined;
  /**
   * How the failing upload request (failUploadRequest) answers: its status (default 500 `General
   * Error`), extra headers (a proxy's or edge's `Retry-After`), and `afterStore`: the upload is
   * stored first, then the answer fails (a response lost after the work was done).
   */
  failUploadAnswer: { status?: number; message?: string; headers?: Record<string, string>; afterStore?: boolean } = {};
  /** The X-Unique-Upload-Id of every chunk received, in order. */
  readonly chunkUploadIds: string[] = [];
  /** Public IDs whose delivery the account refuses (Cloudinary blocks PDF and ZIP delivery on new accounts): 401 "deny or ACL failure". */
  denyDelivery: RegExp | undefined;
  /** Largest file a single upload accepts (Cloudinary's plan limits); default 100 MB. */
  maxFileSize = 100 * 1024 * 1024;
  /** More characters the naming rules treat as special (replaced with `_`), as if Cloudinary changed them. */
  extraSpecialCharacters: RegExp | undefined;
  /** How long an invalidation takes to reach the CDN (on the fake's clock); default 5 minutes. */
  invalidationDelayMs = DEFAULT_INVALIDATION_DELAY_MS;

  /** The CDN in front of delivery URLs: exact URL (path and query) → cached answer. */
  private readonly cdn = new Map<string, CdnEntry>();
  /** How long the last 40x of a URL was cached, so the next one lasts twice as long. */
  private readonly errorTtls = new Map<string, number>();
  private readonly pendingPurges: Array<{ surrogate: string; requestedAt: number; effectiveAt: number }> = [];
  /** Last version given per asset address, so a public ID uploaded again never repeats one. */
  private readonly lastVersions = new Map<string, number>();
  /** Added to the real time for everything CDN (cache ages, invalidation delays); see advanceClock. */
  private clockOffsetMs = 0;

  constructor(accounts: FakeAccount[]) {
    for (const a of accounts) this.accounts.set(a.cloudName, a);
  }

  /** The fake's clock for the CDN (ms). Signatures and expiring URLs use the real time the SDK signs with. */
  now(): number {
    return Date.now() + this.clockOffsetMs;
  }

  /** Moves the CDN's clock forward: cached answers age, invalidations propagate. */
  advanceClock(ms: number): void {
    this.clockOffsetMs += ms;
  }

  /** Cached delivery answers, by exact URL (for tests that check what the CDN holds). */
  cachedAnswer(pathAndQuery: string): { status: number; expiresAt: number } | undefined {
    const entry = this.cdn.get(pathAndQuery);
    return entry && entry.expiresAt > this.now() ? { status: entry.status, expiresAt: entry.expiresAt } : undefined;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      this.handle(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.json(res, 500, { error: { message: `fake: ${String(err)}` } });
        else res.destroy();
      });
    });
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    const server = this.server;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** A CLOUDINARY_URL for an account, with upload_prefix pointing at this fake. */
  cloudinaryUrl(cloudName: string, secret?: string): string {
    const a = this.accounts.get(cloudName)!;
    return `cloudinary://${a.apiKey}:${encodeURIComponent(secret ?? a.apiSecret)}@${cloudName}?upload_prefix=${encodeURIComponent(this.url)}`;
  }

  /** A fetch that sends res.cloudinary.com (delivery) requests here, as a test proxy would. */
  readonly fetch = (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    return fetch(url.replace(/^https?:\/\/res\.cloudinary\.com\//, `${this.url}/`), init);
  };

  asset(cloud: string, resourceType: string, type: string, publicId: string): StoredAsset | undefined {
    return this.assets.get(`${cloud}|${resourceType}|${type}|${publicId}`);
  }

  /** Unfinished chunked uploads (X-Unique-Upload-Id sessions that never got their last chunk). */
  get openChunkSessions(): number {
    return this.chunkSessions.size;
  }

  // ------------------------------------------------------------------ routing

  private async handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const parts = url.pathname.split('/').slice(1);
    if (parts[0] === 'v1_1') {
      const [, cloud, second, ...rest] = parts;
      const account = this.accounts.get(cloud ?? '');
      if (!account) {
        // The API's answer to an unknown cloud name (after the body, so the client reads the answer).
        await new Promise<void>((resolve) => req.resume().on('end', resolve).on('error', resolve));
        return this.json(res, 401, { error: { message: `Invalid cloud_name ${cloud}` } });
      }
      if (second === 'resources') return this.admin(account, req, res, rest, url);
      if (second === 'config' && rest.length === 0) return this.config(account, req, res, url);
      const action = rest[0];
      const resourceType = second ?? '';
      if (req.method === 'POST' && action === 'upload') return this.upload(account, resourceType, req, res);
      if (req.method === 'POST' && action === 'explicit') return this.explicit(account, resourceType, req, res);
      if (req.method === 'POST' && action === 'destroy') return this.destroy(account, resourceType, req, res);
      if (req.method === 'GET' && action === 'download') return this.download(account, resourceType, req, res, url);
      return this.json(res, 404, { error: { message: 'fake: unknown API route' } });
    }
    if (req.method === 'GET' || req.method === 'HEAD') return this.deliver(req, res, url);
    res.writeHead(405).end();
  }

  private json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text), ...headers });
    res.end(text);
  }

  private rateLimitHeaders(): Record<string, string> {
    return {
      'x-featureratelimit-limit': String(this.rateLimit.limit),
      'x-featureratelimit-remaining': String(Math.max(0, this.rateLimit.remaining)),
      'x-featureratelimit-reset': this.rateLimit.resetAt.toUTCString(),
    };
  }

  private rateLimitedAnswer(res: http.ServerResponse): void {
    this.json(res, 420, { error: { message: `Rate Limit Exceeded` } }, this.rateLimitHeaders());
  }

  // ------------------------------------------------------------------ signatures

  /** Checks api_key, timestamp window and signature of signed API parameters; answers and returns false when wrong. */
  private verifySigned(account: FakeAccount, params: Record<string, string>, res: http.ServerResponse, checkTimestamp = true): boolean {
    const { signature, api_key: apiKey, ...rest } = params;
    delete rest.file;
    delete rest.resource_type;
    delete rest.cloud_name;
    if (apiKey !== account.apiKey) {
      this.counts.rejectedSignatures++;
      this.json(res, 401, { error: { message: `Unknown API key ${apiKey ?? ''}` } });
      return false;
    }
    if (!signature) {
      this.counts.rejectedSignatures++;
      this.json(res, 401, { error: { message: 'Must supply signature' } });
      return false;
    }
    if (checkTimestamp) {
      const ts = Number(rest.timestamp);
      const now = Date.now() / 1000;
      if (!Number.isFinite(ts)) {
        this.json(res, 401, { error: { message: 'Missing required parameter - timestamp' } });
        return false;
      }
      if (now - ts > SIGNATURE_WINDOW_SECONDS || ts - now > SIGNATURE_WINDOW_SECONDS) {
        this.counts.rejectedSignatures++;
        this.json(res, 401, { error: { message: `Stale request - reported time is ${new Date(ts * 1000).toISOString()} which is more than 1 hour ago` } });
        return false;
      }
    }
    const toSign = apiStringToSign(rest);
    const expected = signature.length === 64 ? hashHex(toSign + account.apiSecret, 'sha256') : hashHex(toSign + account.apiSecret, 'sha1');
    if (expected !== signature) {
      this.counts.rejectedSignatures++;
      this.json(res, 401, { error: { message: `Invalid Signature ${signature}. String to sign - '${toSign}'.` } });
      return false;
    }
    return true;
  }

  private checkBasicAuth(account: FakeAccount, req: http.IncomingMessage, res: http.ServerResponse): boolean {
    const header = req.headers.authorization ?? '';
    const match = /^Basic (.+)$/.exec(header);
    const [key, secret] = match ? Buffer.from(match[1]!, 'base64').toString('utf8').split(/:(.*)/s) : [];
    if (key !== account.apiKey || secret !== account.apiSecret) {
      this.counts.rejectedSignatures++;
      this.json(res, 401, { error: { message: key === account.apiKey ? 'api_secret mismatch' : `Unknown API key ${key ?? ''}` } });
      return false;
    }
    return true;
  }

  // ------------------------------------------------------------------ Upload API

  private parseMultipart(req: http.IncomingMessage): Promise<SignedForm> {
    return new Promise((resolve, reject) => {
      const fields: Record<string, string> = {};
      let file: Buffer | undefined;
      let filename: string | undefined;
      const form = busboy({ headers: req.headers, limits: { fieldSize: 1024 * 1024 } });
      form.on('field', (name, value) => {
        fields[name] = value;
      });
      form.on('file', (_name, stream, info) => {
        filename = info.filename;
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          file = Buffer.concat(chunks);
        });
      });
      // Only a complete body (closing boundary seen) counts; a cut connection is an error.
      form.on('close', () => resolve({ fields, file, filename }));
      form.on('error', reject);
      req.on('aborted', () => reject(new Error('client aborted')));
      req.pipe(form);
    });
  }

  /** A complete multipart Upload API request whose signature holds; `undefined` once answered (or the client is gone). */
  private async signedForm(account: FakeAccount, req: http.IncomingMessage, res: http.ServerResponse): Promise<SignedForm | undefined> {
    let body: SignedForm;
    try {
      body = await this.parseMultipart(req);
    } catch {
      // Incomplete multipart body: nothing is stored (and the client is gone).
      this.counts.incompleteBodies++;
      res.destroy();
      return undefined;
    }
    if (this.rateLimited.upload) {
      this.rateLimitedAnswer(res);
      return undefined;
    }
    return this.verifySigned(account, body.fields, res) ? body : undefined;
  }

  private async upload(account: FakeAccount, resourceType: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await this.signedForm(account, req, res);
    if (!body) return;
    const failing = ++this.uploadRequests === this.failUploadRequest;
    const fail = (): void =>
      this.json(
        res,
        this.failUploadAnswer.status ?? 500,
        { error: { message: this.failUploadAnswer.message ?? 'General Error' } },
        this.failUploadAnswer.headers,
      );
    if (failing && !this.failUploadAnswer.afterStore) return fail();
    const { fields } = body;
    if (!body.file) return this.json(res, 400, { error: { message: 'Missing required parameter - file' } });

    let data = body.file;
    const uniqueId = req.headers['x-unique-upload-id'];
    const range = req.headers['content-range'];
    if (typeof uniqueId === 'string' && typeof range === 'string') {
      this.counts.uploadChunks++;
      this.chunkUploadIds.push(uniqueId);
      const m = /^bytes (\d+)-(\d+)\/(-1|\d+)$/.exec(range);
      if (!m || Number(m[2]) - Number(m[1]) + 1 !== data.length) return this.json(res, 400, { error: { message: `Invalid Content-Range ${range}` } });
      // Every chunk but the last is at least 5 MB (the SDKs' smallest chunk_size).
      if (m[3] === '-1' && data.length < MIN_CHUNK_BYTES)
        return this.json(res, 400, { error: { message: `Chunk of ${data.length} bytes is smaller than the minimum of ${MIN_CHUNK_BYTES}` } });
      const session: ChunkSession = this.chunkSessions.get(uniqueId) ?? { parts: new Map() };
      this.chunkSessions.set(uniqueId, session);
      session.parts.set(Number(m[1]), data);
      if (m[3] !== '-1') session.total = Number(m[3]);
      if (session.total === undefined) return this.json(res, 200, { done: false, bytes: data.length });
      const offsets = [...session.parts.keys()].sort((a, b) => a - b);
      let expect = 0;
      for (const o of offsets) {
        if (o !== expect) return this.json(res, 200, { done: false });
        expect += session.parts.get(o)!.length;
      }
      if (expect !== session.total) return this.json(res, 400, { error: { message: 'Chunks do not add up to the total size' } });
      data = Buffer.concat(offsets.map((o) => session.parts.get(o)!));
      this.chunkSessions.delete(uniqueId);
    } else {
      this.counts.upload++;
    }

    if (data.length === 0) return this.json(res, 400, { error: { message: 'Empty file' } });
    if (data.length > this.maxFileSize)
      return this.json(res, 400, { error: { message: `File size too large. Got ${data.length}. Maximum is ${this.maxFileSize}.` } });
    const rt = resourceType === 'auto' ? (imageFormat(data) ? 'image' : videoFormat(data) ? 'video' : 'raw') : resourceType;
    if (rt !== 'image' && rt !== 'video' && rt !== 'raw') return this.json(res, 400, { error: { message: `Invalid resource type ${resourceType}` } });
    let format = '';
    if (rt === 'image') {
      const f = imageFormat(data);
      if (!f) return this.json(res, 400, { error: { message: 'Invalid image file' } });
      format = f;
    } else if (rt === 'video') {
      const f = videoFormat(data);
      if (!f) return this.json(res, 400, { error: { message: 'Unsupported video format or file' } });
      format = f;
    }
    // allowed_formats: a file of any other format is refused (raw files: their extension).
    if (fields.allowed_formats) {
      const allowed = fields.allowed_formats.split(',').map((f) => f.trim().toLowerCase());
      const actual = rt === 'raw' ? (/\.([^./]+)$/.exec(fields.public_id ?? body.filename ?? '')?.[1] ?? '').toLowerCase() : format;
      if (!allowed.includes(actual))
        return this.json(res, 400, {
          error: { message: `${rt === 'raw' ? 'File' : rt === 'image' ? 'Image' : 'Video'} file format ${actual || 'unknown'} not allowed` },
        });
    }
    const type = fields.type || 'upload';
    if (!DELIVERY_TYPES.has(type)) return this.json(res, 400, { error: { message: `Invalid type ${type}` } });
    const named = this.nameUpload(account, rt, fields, body.filename);
    if ('error' in named) return this.json(res, 400, { error: { message: named.error } });
    const { publicId, assetFolder } = named;
    const key = `${account.cloudName}|${rt}|${type}|${publicId}`;
    const existing = this.assets.get(key);
    // Signed uploads overwrite by default; overwrite=false returns the existing asset untouched.
    const overwrite = fields.overwrite === undefined || truthy(fields.overwrite);
    if (existing && !overwrite) {
      return this.json(res, 200, { ...this.describe(account, existing), existing: true });
    }
    const version = Math.max(Math.floor(Date.now() / 1000), (this.lastVersions.get(key) ?? 0) + 1);
    this.lastVersions.set(key, version);
    const dynamic = account.folderMode === 'dynamic';
    const asset: StoredAsset = {
      publicId,
      resourceType: rt,
      type,
      format,
      bytes: data,
      version,
      createdAt: new Date(),
      etag: createHash('md5').update(data).digest('hex'),
      context: fields.context,
      originalFilename: body.filename?.replace(/\.[^.]*$/, ''),
      ...(dynamic ? { assetFolder: assetFolder ?? '', displayName: fields.display_name || publicId.split('/').pop()! } : {}),
    };
    this.assets.set(key, asset);
    // The support article's recipe for URLs requested before the upload: overwrite and invalidate.
    if (overwrite && truthy(fields.invalidate)) this.invalidate(key);
    if (failing) return fail();
    this.json(res, 200, this.describe(account, asset));
  }

  /**
   * The public ID (and, in dynamic folder mode, the asset folder) an upload gets: the `public_id`
   * asked for, or one made from the file name (`use_filename`, with six random characters unless
   * `unique_filename` is false), or a random one; prefixed by `folder` (both modes) or by
   * `asset_folder` with `use_asset_folder_as_public_id_prefix` (dynamic); then the naming rules.
   */
  private nameUpload(
    account: FakeAccount,
    resourceType: 'image' | 'video' | 'raw',
    fields: Record<string, string>,
    filename: string | undefined,
  ): { publicId: string; assetFolder?: string } | { error: string } {
    const dynamic = account.folderMode === 'dynamic';
    const dynamicOnly = ['asset_folder', 'display_name', 'use_asset_folder_as_public_id_prefix', 'use_filename_as_display_name'].filter(
      (f) => fields[f] !== undefined,
    );
    if (!dynamic && dynamicOnly.length > 0) return { error: `${dynamicOnly.join(', ')}: only for product environments in dynamic folder mode` };
    if (fields.public_id_prefix !== undefined) return { error: 'fake: public_id_prefix is not modelled' };
    let name: string;
    if (fields.public_id) {
      name = fields.public_id;
    } else if (truthy(fields.use_filename) && filename && filename !== 'file') {
      // Raw public IDs keep the extension; image and video ones drop it (the format is apart).
      const base = filename.split('/').pop()!;
      const dot = base.lastIndexOf('.');
      const [stem, ext] = dot > 0 ? [base.slice(0, dot), base.slice(dot)] : [base, ''];
      const suffix = fields.unique_filename === undefined || truthy(fields.unique_filename) ? `_${uniqueSuffix()}` : '';
      name = resourceType === 'raw' ? `${stem}${suffix}${ext}` : `${stem}${suffix}`;
    } else {
      name = randomBytes(10).toString('hex');
    }
    let assetFolder = dynamic ? fields.asset_folder : undefined;
    const folder = fields.folder?.replace(/^\/+|\/+$/g, '');
    if (folder) {
      name = `${folder}/${name}`;
      // Dynamic folder mode keeps `folder` working as before: asset folder and public-ID prefix.
      if (dynamic && assetFolder === undefined) assetFolder = folder;
    } else if (dynamic && assetFolder && truthy(fields.use_asset_folder_as_public_id_prefix)) {
      name = `${assetFolder}/${name}`;
    }
    const ruled = applyPublicIdRules(name, this.extraSpecialCharacters);
    return 'error' in ruled ? ruled : { publicId: ruled.publicId, ...(assetFolder !== undefined ? { assetFolder } : {}) };
  }

  private describe(account: FakeAccount, a: StoredAsset): Record<string, unknown> {
    const file = a.resourceType === 'raw' ? a.publicId : `${a.publicId}.${a.format}`;
    const path = `${a.resourceType}/${a.type}/v${a.version}/${file}`;
    return {
      asset_id: this.assetId(account, a),
      public_id: a.publicId,
      version: a.version,
      signature: hashHex(`public_id=${a.publicId}&version=${a.version}${account.apiSecret}`, 'sha1'),
      resource_type: a.resourceType,
      type: a.type,
      ...(a.resourceType === 'raw' ? {} : { format: a.format }),
      created_at: a.createdAt.toISOString(),
      bytes: a.bytes.length,
      etag: a.etag,
      url: `http://res.cloudinary.com/${account.cloudName}/${path}`,
      secure_url: `https://res.cloudinary.com/${account.cloudName}/${path}`,
      ...(a.context ? { context: { custom: Object.fromEntries(a.context.split('|').map((kv) => kv.split('='))) } } : {}),
      ...(a.originalFilename ? { original_filename: a.originalFilename } : {}),
      // Dynamic folder mode answers with the asset's folder and display name.
      ...(a.assetFolder !== undefined ? { asset_folder: a.assetFolder, display_name: a.displayName } : {}),
    };
  }

  /** The Upload API's explicit: actions on an existing asset; with none, its details (and it is not rate-limited). */
  private async explicit(account: FakeAccount, resourceType: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await this.signedForm(account, req, res);
    if (!body) return;
    this.counts.explicit++;
    const { public_id: publicId = '', type = 'upload', invalidate, timestamp: _ts, api_key: _k, signature: _s, ...actions } = body.fields;
    const unmodelled = Object.keys(actions);
    if (unmodelled.length > 0) return this.json(res, 400, { error: { message: `fake: explicit with ${unmodelled.join(', ')} is not modelled` } });
    const key = `${account.cloudName}|${resourceType}|${type}|${publicId}`;
    const asset = this.assets.get(key);
    if (!asset) return this.json(res, 404, { error: { message: `Resource not found - ${publicId}` } });
    if (truthy(invalidate)) this.invalidate(key);
    this.json(res, 200, this.describe(account, asset));
  }

  /** Admin API `GET /config`: the product environment, with `settings.folder_mode` when `settings=true`. */
  private config(account: FakeAccount, req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    if (!this.adminAllowed(account, req, res)) return;
    if (req.method !== 'GET') return this.json(res, 404, { error: { message: 'fake: only GET config is implemented' } }, this.rateLimitHeaders());
    const body: Record<string, unknown> = { cloud_name: account.cloudName, created_at: new Date(0).toISOString() };
    if (truthy(url.searchParams.get('settings') ?? undefined)) body.settings = { folder_mode: account.folderMode ?? 'fixed' };
    this.json(res, 200, body, this.rateLimitHeaders());
  }

  private async destroy(account: FakeAccount, resourceType: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await this.signedForm(account, req, res);
    if (!body) return;
    this.counts.destroy++;
    const { public_id: publicId = '', type = 'upload', invalidate } = body.fields;
    this.destroys.push({ publicId, resourceType, type, invalidate: truthy(invalidate) });
    const key = `${account.cloudName}|${resourceType}|${type}|${publicId}`;
    const existed = this.assets.delete(key);
    if (truthy(invalidate)) this.invalidate(key);
    this.json(res, 200, { result: existed ? 'ok' : 'not found' });
  }

  /** Private download URL (`utils.private_download_url`): signed, optionally expiring, optionally an attachment. */
  private download(account: FakeAccount, resourceType: string, req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    const params = Object.fromEntries(url.searchParams.entries());
    if (!this.verifySigned(account, params, res, params.expires_at === undefined)) return;
    this.counts.download++;
    if (params.expires_at !== undefined && Number(params.expires_at) < Date.now() / 1000) {
      return this.json(res, 401, { error: { message: 'Expired download URL' } });
    }
    const type = params.type || 'upload';
    const asset = this.asset(account.cloudName, resourceType, type, params.public_id ?? '');
    if (!asset || (resourceType !== 'raw' && params.format && params.format !== asset.format)) {
      res.writeHead(404, { 'x-cld-error': headerSafe(`Resource not found - ${params.public_id ?? ''}`) }).end();
      return;
    }
    const fileName = (asset.resourceType === 'raw' ? asset.publicId : `${asset.publicId}.${asset.format}`).split('/').pop()!;
    const disposition = params.attachment === 'true' || params.attachment === '1' ? `attachment; filename="${encodeURIComponent(fileName)}"` : undefined;
    this.sendAsset(req, res, asset, disposition);
  }

  // ------------------------------------------------------------------ Admin API

  /** Basic auth and the hourly budget of the Admin API; answers and returns false when refused. */
  private adminAllowed(account: FakeAccount, req: http.IncomingMessage, res: http.ServerResponse): boolean {
    if (!this.checkBasicAuth(account, req, res)) return false;
    this.counts.admin++;
    if (this.rateLimited.admin || this.rateLimit.remaining <= 0) {
      this.rateLimitedAnswer(res);
      return false;
    }
    this.rateLimit.remaining--;
    return true;
  }

  private admin(account: FakeAccount, req: http.IncomingMessage, res: http.ServerResponse, rest: string[], url: URL): void {
    if (!this.adminAllowed(account, req, res)) return;
    const headers = this.rateLimitHeaders();
    if (req.method !== 'GET') return this.json(res, 404, { error: { message: 'fake: only GET resources is implemented' } }, headers);
    const [first = 'image', type, encodedId, ...extra] = rest;
    if (extra.length > 0) return this.json(res, 404, { error: { message: 'fake: unknown Admin API route' } }, headers);
    if (first === 'by_asset_folder' && type === undefined) {
      // Dynamic folder mode only: the assets of one asset folder, newest first.
      if (account.folderMode !== 'dynamic')
        return this.json(res, 400, { error: { message: 'by_asset_folder is only available in dynamic folder mode' } }, headers);
      const folder = url.searchParams.get('asset_folder') ?? '';
      const found = this.assetsOf(account).filter((a) => a.assetFolder === folder);
      return this.page(
        account,
        res,
        url,
        found.sort((a, b) => b.createdAt.getTime() - a.createdAt.getTime()),
        false,
        headers,
      );
    }
    if (/^[0-9a-f]{32}$/.test(first) && type === undefined) {
      // GET /resources/:asset_id
      const asset = this.assetsOf(account).find((a) => this.assetId(account, a) === first);
      if (!asset) return this.json(res, 404, { error: { message: `Resource not found - ${first}` } }, headers);
      return this.json(res, 200, this.describe(account, asset), headers);
    }
    const resourceType = first;
    if (resourceType !== 'image' && resourceType !== 'video' && resourceType !== 'raw') {
      return this.json(res, 400, { error: { message: `Invalid resource type ${resourceType}` } }, headers);
    }
    if (encodedId !== undefined) {
      const publicId = decodeURIComponent(encodedId);
      const asset = this.asset(account.cloudName, resourceType, type ?? 'upload', publicId);
      if (!asset) return this.json(res, 404, { error: { message: `Resource not found - ${publicId}` } }, headers);
      return this.json(res, 200, this.describe(account, asset), headers);
    }
    // With a prefix, Cloudinary sorts by public ID (also in dynamic folder mode: the prefix is of the public ID); without one, newest first.
    const prefix = url.searchParams.get('prefix') ?? '';
    const byPublicId = prefix !== '';
    const matching = this.assetsOf(account).filter(
      (a) => a.resourceType === resourceType && (type === undefined || a.type === type) && a.publicId.startsWith(prefix),
    );
    matching.sort((a, b) => (byPublicId ? (a.publicId < b.publicId ? -1 : a.publicId > b.publicId ? 1 : 0) : b.createdAt.getTime() - a.createdAt.getTime()));
    this.page(account, res, url, matching, byPublicId, headers);
  }

  /** One page of a listing (`max_results`, `next_cursor`). */
  private page(account: FakeAccount, res: http.ServerResponse, url: URL, sorted: StoredAsset[], byPublicId: boolean, headers: Record<string, string>): void {
    const maxResults = Number(url.searchParams.get('max_results') ?? '10');
    if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > MAX_RESULTS_LIMIT) {
      return this.json(res, 400, { error: { message: `max_results must be from 1 to ${MAX_RESULTS_LIMIT}` } }, headers);
    }
    const after = url.searchParams.get('next_cursor');
    const start = after ? Buffer.from(after, 'base64url').toString('utf8') : undefined;
    const matching =
      start === undefined ? sorted : byPublicId ? sorted.filter((a) => a.publicId > start) : sorted.slice(sorted.findIndex((a) => a.publicId === start) + 1);
    const page = matching.slice(0, maxResults);
    const body: Record<string, unknown> = { resources: page.map((a) => this.describe(account, a)) };
    if (matching.length > maxResults) body.next_cursor = Buffer.from(page[page.length - 1]!.publicId, 'utf8').toString('base64url');
    this.json(res, 200, body, headers);
  }

  private assetsOf(account: FakeAccount): StoredAsset[] {
    const mine = `${account.cloudName}|`;
    return [...this.assets].filter(([address]) => address.startsWith(mine)).map(([, a]) => a);
  }

  private assetId(account: FakeAccount, a: StoredAsset): string {
    return createHash('md5').update(`${account.cloudName}/${a.resourceType}/${a.type}/${a.publicId}`).digest('hex');
  }

  // ------------------------------------------------------------------ delivery and its CDN

  /** Schedules the purge of every cached URL of an asset; it reaches the CDN after `invalidationDelayMs`. */
  private invalidate(surrogate: string): void {
    const now = this.now();
    this.pendingPurges.push({ surrogate, requestedAt: now, effectiveAt: now + this.invalidationDelayMs });
  }

  /** Purges whose propagation delay has passed remove what was cached before they were asked for. */
  private applyPurges(): void {
    const now = this.now();
    for (let i = this.pendingPurges.length - 1; i >= 0; i--) {
      const purge = this.pendingPurges[i]!;
      if (purge.effectiveAt > now) continue;
      this.pendingPurges.splice(i, 1);
      for (const [url, entry] of this.cdn) {
        if (entry.surrogate === purge.surrogate && entry.cachedAt <= purge.requestedAt) {
          this.cdn.delete(url);
          this.errorTtls.delete(url);
        }
      }
    }
  }

  /**
   * The CDN: an answer cached for this exact URL (path and query) is served as it is; otherwise
   * the origin answers, and the answer is cached, a 200 for 30 days, a 40x for 1 minute the first
   * time and twice as long each time the URL fails again, up to 24 hours.
   */
  private deliver(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    if (req.method === 'HEAD') this.counts.deliveryHead++;
    else this.counts.deliveryGet++;
    this.applyPurges();
    const cacheKey = url.pathname + url.search;
    const now = this.now();
    let entry = this.cdn.get(cacheKey);
    if (entry && entry.expiresAt > now) {
      this.counts.cdnHits++;
    } else {
      const answer = this.origin(url);
      let ttl: number | undefined;
      if (answer.status === 200) {
        ttl = CDN_OK_TTL_MS;
        this.errorTtls.delete(cacheKey);
      } else if (answer.status >= 400 && answer.status < 500) {
        const last = this.errorTtls.get(cacheKey);
        ttl = last === undefined ? CDN_FIRST_ERROR_TTL_MS : Math.min(last * 2, CDN_MAX_ERROR_TTL_MS);
        this.errorTtls.set(cacheKey, ttl);
      }
      entry = { ...answer, cachedAt: now, expiresAt: now + (ttl ?? 0) };
      if (ttl !== undefined) this.cdn.set(cacheKey, entry);
      else this.cdn.delete(cacheKey);
    }
    if (entry.status !== 200 || !entry.asset) {
      res.writeHead(entry.status, { ...entry.headers, 'content-length': '0' }).end();
      return;
    }
    if (entry.transformation) res.setHeader('x-fake-transformation', entry.transformation);
    const { asset, disposition, transformation } = entry;
    if (transformation && asset.resourceType === 'image') {
      // The transformations media-storage/images asks for are rendered (./cloudinary-transform.ts); others serve the original.
      renderTransformation(asset, transformation).then(
        (rendered) => this.sendAsset(req, res, rendered ?? asset, disposition),
        (err: Error) => res.writeHead(400, { 'x-cld-error': headerSafe(`fake: rendering failed: ${err.message.split('\n')[0]}`), 'content-length': '0' }).end(),
      );
      return;
    }
    this.sendAsset(req, res, asset, disposition);
  }

  /** What Cloudinary's delivery servers answer for a URL (the CDN caches it). */
  private origin(url: URL): Omit<CdnEntry, 'cachedAt' | 'expiresAt'> {
    const error = (status: number, reason: string, surrogate?: string): Omit<CdnEntry, 'cachedAt' | 'expiresAt'> => ({
      status,
      headers: { 'x-cld-error': headerSafe(reason) },
      surrogate,
    });
    const segments = url.pathname.split('/').slice(1);
    const [cloud, resourceType, type, ...rest] = segments;
    const account = this.accounts.get(cloud ?? '');
    if (!account || !resourceType || !type || rest.length === 0) return error(404, `Resource not found - ${url.pathname}`);
    let signature: string | undefined;
    if (/^s--[A-Za-z0-9_-]+--$/.test(rest[0]!)) signature = rest.shift()!.slice(3, -2);
    // Transformation components come before the version; the version is never signed, and its
    // value is not checked (SDKs write v1 for every asset in a folder).
    const transformations: string[] = [];
    let versionIndex = rest.findIndex((s) => /^v\d+$/.test(s));
    if (versionIndex >= 0) {
      transformations.push(...rest.slice(0, versionIndex));
    } else {
      while (rest.length > 1 && /^[a-z]{1,3}_[^/]*$/.test(rest[0]!.split(',')[0]!)) transformations.push(rest.shift()!);
      versionIndex = -1;
    }
    const sourceSegments = versionIndex >= 0 ? rest.slice(versionIndex + 1) : rest;
    const decoded = sourceSegments.map((s) => decodeURIComponent(s)).join('/');
    const transformation = transformations.join('/');

    // An image or video URL's last dot starts the format: `my.photo_abc123` asked for without an
    // extension is public ID `my` in format `photo_abc123`. Raw URLs carry the whole public ID.
    let publicId = decoded;
    let requestedFormat: string | undefined;
    if (resourceType !== 'raw') {
      const slash = decoded.lastIndexOf('/');
      const dot = decoded.lastIndexOf('.');
      if (dot > slash + 1) {
        publicId = decoded.slice(0, dot);
        requestedFormat = decoded.slice(dot + 1);
      }
    }
    const surrogate = `${account.cloudName}|${resourceType}|${type}|${publicId}`;

    if (type === 'authenticated' || signature !== undefined) {
      const toSign = [transformation, sdkEncodePath(decoded)].filter(Boolean).join('/');
      const ok =
        signature !== undefined &&
        (signature.length === 32
          ? signature === deliverySignature(toSign, account.apiSecret, 'sha256', 32)
          : signature === deliverySignature(toSign, account.apiSecret, 'sha1') || signature === deliverySignature(toSign, account.apiSecret, 'sha256'));
      if (!ok) {
        this.counts.rejectedSignatures++;
        return error(401, 'Invalid signature', surrogate);
      }
    }

    const asset = this.assets.get(surrogate);
    if (!asset) return error(404, `Resource not found - ${decoded}`, surrogate);
    if (this.denyDelivery?.test(asset.publicId)) return error(401, 'deny or ACL failure', surrogate);
    if (requestedFormat !== undefined && requestedFormat !== asset.format) {
      // Cloudinary would convert; the fake cannot, and says so rather than serve wrong bytes.
      return error(400, `fake: format conversion ${asset.format} -> ${requestedFormat} is not implemented`, surrogate);
    }
    if (resourceType === 'raw' && transformation && !/^fl_attachment(:[^/]*)?$/.test(transformation)) {
      return error(400, 'Transformations are not supported for raw files', surrogate);
    }
    const attachment = /(^|[,/])fl_attachment(:([^,/]*))?/.exec(transformation);
    const disposition = attachment
      ? `attachment; filename="${encodeURIComponent(attachment[3] ? `${attachment[3]}${asset.format ? `.${asset.format}` : ''}` : decoded.split('/').pop()!)}"`
      : undefined;
    // The asset as it is now: what the CDN keeps serving for this URL until it expires or is purged.
    return { status: 200, headers: {}, asset: { ...asset }, disposition, transformation: transformation || undefined, surrogate };
  }

  private sendAsset(req: http.IncomingMessage, res: http.ServerResponse, asset: StoredAsset, disposition: string | undefined): void {
    const contentType =
      asset.resourceType === 'raw' ? mime.lookup(asset.publicId) || 'application/octet-stream' : (FORMAT_TYPES[asset.format] ?? 'application/octet-stream');
    const size = asset.bytes.length;
    const headers: Record<string, string> = {
      'content-type': contentType,
      etag: `"${asset.etag}"`,
      'last-modified': asset.createdAt.toUTCString(),
      'accept-ranges': 'bytes',
      'cache-control': 'public, max-age=2592000',
      ...(disposition ? { 'content-disposition': disposition } : {}),
    };
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (m && (m[1] !== '' || m[2] !== '')) {
        if (m[1] === '') {
          start = Math.max(0, size - Number(m[2]));
        } else {
          start = Number(m[1]);
          if (m[2] !== '') end = Math.min(end, Number(m[2]));
        }
        if (start >= size || start > end) {
          res.writeHead(416, { 'content-range': `bytes */${size}`, 'content-length': '0' }).end();
          return;
        }
        status = 206;
        headers['content-range'] = `bytes ${start}-${end}/${size}`;
      }
    }
    const body = asset.bytes.subarray(start, end + 1);
    headers['content-length'] = String(body.length);
    res.writeHead(status, headers);
    res.end(req.method === 'HEAD' ? undefined : body);
  }
}
