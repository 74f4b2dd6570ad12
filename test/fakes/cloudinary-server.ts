/**
 * A fake Cloudinary for tests, written from Cloudinary's Upload API, Admin API, authentication
 * (signatures) and delivery URL documentation. One HTTP server plays both hosts:
 *
 * - the API host (what `upload_prefix` points at): `/v1_1/:cloud/:resource_type/upload` (multipart,
 *   chunked with X-Unique-Upload-Id and Content-Range), `/destroy`, `/download` (private download
 *   URLs with `expires_at`), and the Admin API `/v1_1/:cloud/resources/...` (Basic auth);
 * - the delivery host (res.cloudinary.com): `/:cloud/:resource_type/:type/[s--SIG--/][transformation/][vN/]public_id[.ext]`,
 *   GET and HEAD, Range, 404 with X-Cld-Error.
 *
 * It checks what arrives the way Cloudinary does: the API signature (parameters sorted and joined
 * with `&`, the api_secret appended, SHA-1 or SHA-256 hex; `&` inside values escaped as `%26`,
 * signature version 2), the timestamp window (one hour), the api_key, Basic auth for the Admin
 * API, and delivery signatures (`s--` + 8 characters of the URL-safe Base64 SHA-1/SHA-256 of the
 * path and the secret, or 32 characters of SHA-256) for `authenticated` assets. It cannot render
 * transformations: it serves the original bytes and echoes the transformation it parsed in
 * `X-Fake-Transformation`, so tests can see what a URL asked for.
 */
import { createHash } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import busboy from 'busboy';
import mime from 'mime-types';

export interface FakeAccount {
  cloudName: string;
  apiKey: string;
  apiSecret: string;
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
}

interface ChunkSession {
  parts: Map<number, Buffer>;
  total?: number;
}

const SIGNATURE_WINDOW_SECONDS = 3600;
const MAX_RESULTS_LIMIT = 500;

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
  const b64 = createHash(algorithm).update(toSign + secret).digest('base64');
  return b64.slice(0, length).replace(/\//g, '_').replace(/\+/g, '-');
}

/** Header values are Latin-1: a public ID with other characters is percent-encoded in X-Cld-Error. */
function headerSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]/gu, (ch) => encodeURIComponent(ch));
}

function sdkEncodePath(decoded: string): string {
  return encodeURIComponent(decoded).replace(/%3A/g, ':').replace(/%2F/g, '/');
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

  /** Requests counted by kind, for tests that must prove what was (not) called. */
  readonly counts = { admin: 0, upload: 0, uploadChunks: 0, destroy: 0, download: 0, deliveryGet: 0, deliveryHead: 0, rejectedSignatures: 0, incompleteBodies: 0 };
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
  /** Public IDs whose delivery the account refuses (Cloudinary blocks PDF and ZIP delivery on new accounts): 401 "deny or ACL failure". */
  denyDelivery: RegExp | undefined;
  /** Largest file a single upload accepts (Cloudinary's plan limits); default 100 MB. */
  maxFileSize = 100 * 1024 * 1024;

  constructor(accounts: FakeAccount[]) {
    for (const a of accounts) this.accounts.set(a.cloudName, a);
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
      if (!account) return this.json(res, 404, { error: { message: `Invalid cloud_name ${cloud}` } });
      if (second === 'resources') return this.admin(account, req, res, rest, url);
      const action = rest[0];
      const resourceType = second ?? '';
      if (req.method === 'POST' && action === 'upload') return this.upload(account, resourceType, req, res);
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

  private parseMultipart(req: http.IncomingMessage): Promise<{ fields: Record<string, string>; file?: Buffer }> {
    return new Promise((resolve, reject) => {
      const fields: Record<string, string> = {};
      let file: Buffer | undefined;
      const form = busboy({ headers: req.headers, limits: { fieldSize: 1024 * 1024 } });
      form.on('field', (name, value) => {
        fields[name] = value;
      });
      form.on('file', (_name, stream) => {
        const chunks: Buffer[] = [];
        stream.on('data', (c: Buffer) => chunks.push(c));
        stream.on('end', () => {
          file = Buffer.concat(chunks);
        });
      });
      // Only a complete body (closing boundary seen) counts; a cut connection is an error.
      form.on('close', () => resolve({ fields, file }));
      form.on('error', reject);
      req.on('aborted', () => reject(new Error('client aborted')));
      req.pipe(form);
    });
  }

  /** A complete multipart Upload API request whose signature holds; `undefined` once answered (or the client is gone). */
  private async signedForm(account: FakeAccount, req: http.IncomingMessage, res: http.ServerResponse): Promise<{ fields: Record<string, string>; file?: Buffer } | undefined> {
    let body: { fields: Record<string, string>; file?: Buffer };
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
    if (++this.uploadRequests === this.failUploadRequest) return this.json(res, 500, { error: { message: 'General Error' } });
    const { fields } = body;
    if (!body.file) return this.json(res, 400, { error: { message: 'Missing required parameter - file' } });

    let data = body.file;
    const uniqueId = req.headers['x-unique-upload-id'];
    const range = req.headers['content-range'];
    if (typeof uniqueId === 'string' && typeof range === 'string') {
      this.counts.uploadChunks++;
      const m = /^bytes (\d+)-(\d+)\/(-1|\d+)$/.exec(range);
      if (!m || Number(m[2]) - Number(m[1]) + 1 !== data.length) return this.json(res, 400, { error: { message: `Invalid Content-Range ${range}` } });
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
    if (data.length > this.maxFileSize) return this.json(res, 400, { error: { message: `File size too large. Got ${data.length}. Maximum is ${this.maxFileSize}.` } });
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
    const type = fields.type || 'upload';
    const publicId = fields.public_id || createHash('sha1').update(data).digest('hex').slice(0, 20);
    const key = `${account.cloudName}|${rt}|${type}|${publicId}`;
    const existing = this.assets.get(key);
    // Signed uploads overwrite by default; overwrite=false returns the existing asset untouched.
    if (existing && (fields.overwrite === 'false' || fields.overwrite === '0')) {
      return this.json(res, 200, { ...this.describe(account, existing), existing: true });
    }
    const asset: StoredAsset = {
      publicId,
      resourceType: rt,
      type,
      format,
      bytes: data,
      version: Math.max(Math.floor(Date.now() / 1000), (existing?.version ?? 0) + 1),
      createdAt: new Date(),
      etag: createHash('md5').update(data).digest('hex'),
      context: fields.context,
    };
    this.assets.set(key, asset);
    this.json(res, 200, this.describe(account, asset));
  }

  private describe(account: FakeAccount, a: StoredAsset): Record<string, unknown> {
    const file = a.resourceType === 'raw' ? a.publicId : `${a.publicId}.${a.format}`;
    const path = `${a.resourceType}/${a.type}/v${a.version}/${file}`;
    return {
      asset_id: createHash('md5').update(`${account.cloudName}/${a.resourceType}/${a.type}/${a.publicId}`).digest('hex'),
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
    };
  }

  private async destroy(account: FakeAccount, resourceType: string, req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const body = await this.signedForm(account, req, res);
    if (!body) return;
    this.counts.destroy++;
    const { public_id: publicId = '', type = 'upload', invalidate } = body.fields;
    this.destroys.push({ publicId, resourceType, type, invalidate: invalidate === 'true' || invalidate === '1' });
    const existed = this.assets.delete(`${account.cloudName}|${resourceType}|${type}|${publicId}`);
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

  private admin(account: FakeAccount, req: http.IncomingMessage, res: http.ServerResponse, rest: string[], url: URL): void {
    if (!this.checkBasicAuth(account, req, res)) return;
    this.counts.admin++;
    if (this.rateLimited.admin || this.rateLimit.remaining <= 0) return this.rateLimitedAnswer(res);
    this.rateLimit.remaining--;
    const headers = this.rateLimitHeaders();
    const [resourceType = 'image', type, encodedId] = rest;
    if (req.method !== 'GET') return this.json(res, 404, { error: { message: 'fake: only GET resources is implemented' } }, headers);
    if (encodedId !== undefined) {
      const publicId = decodeURIComponent(encodedId);
      const asset = this.asset(account.cloudName, resourceType, type ?? 'upload', publicId);
      if (!asset) return this.json(res, 404, { error: { message: `Resource not found - ${publicId}` } }, headers);
      return this.json(res, 200, this.describe(account, asset), headers);
    }
    const prefix = url.searchParams.get('prefix') ?? '';
    const maxResults = Number(url.searchParams.get('max_results') ?? '10');
    if (!Number.isInteger(maxResults) || maxResults < 1 || maxResults > MAX_RESULTS_LIMIT) {
      return this.json(res, 400, { error: { message: `max_results must be from 1 to ${MAX_RESULTS_LIMIT}` } }, headers);
    }
    const after = url.searchParams.get('next_cursor');
    const start = after ? Buffer.from(after, 'base64url').toString('utf8') : undefined;
    // With a prefix, Cloudinary sorts by public ID; without one, newest first (created_at desc).
    const byPublicId = prefix !== '';
    const sorted = [...this.assets.values()]
      .filter((a) => a.resourceType === resourceType && (type === undefined || a.type === type) && a.publicId.startsWith(prefix))
      .sort((a, b) => (byPublicId ? (a.publicId < b.publicId ? -1 : a.publicId > b.publicId ? 1 : 0) : b.createdAt.getTime() - a.createdAt.getTime()));
    const matching =
      start === undefined ? sorted : byPublicId ? sorted.filter((a) => a.publicId > start) : sorted.slice(sorted.findIndex((a) => a.publicId === start) + 1);
    const page = matching.slice(0, maxResults);
    const body: Record<string, unknown> = { resources: page.map((a) => this.describe(account, a)) };
    if (matching.length > maxResults) body.next_cursor = Buffer.from(page[page.length - 1]!.publicId, 'utf8').toString('base64url');
    this.json(res, 200, body, headers);
  }

  // ------------------------------------------------------------------ delivery

  private deliver(req: http.IncomingMessage, res: http.ServerResponse, url: URL): void {
    if (req.method === 'HEAD') this.counts.deliveryHead++;
    else this.counts.deliveryGet++;
    const notFound = (what: string): void => {
      res.writeHead(404, { 'x-cld-error': headerSafe(`Resource not found - ${what}`), 'content-length': '0' }).end();
    };
    const segments = url.pathname.split('/').slice(1);
    const [cloud, resourceType, type, ...rest] = segments;
    const account = this.accounts.get(cloud ?? '');
    if (!account || !resourceType || !type || rest.length === 0) return notFound(url.pathname);
    let signature: string | undefined;
    if (/^s--[A-Za-z0-9_-]+--$/.test(rest[0]!)) signature = rest.shift()!.slice(3, -2);
    // Transformation components come before the version; the version is never signed.
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

    if (type === 'authenticated' || signature !== undefined) {
      const toSign = [transformation, sdkEncodePath(decoded)].filter(Boolean).join('/');
      const ok =
        signature !== undefined &&
        (signature.length === 32
          ? signature === deliverySignature(toSign, account.apiSecret, 'sha256', 32)
          : signature === deliverySignature(toSign, account.apiSecret, 'sha1') || signature === deliverySignature(toSign, account.apiSecret, 'sha256'));
      if (!ok) {
        this.counts.rejectedSignatures++;
        res.writeHead(401, { 'x-cld-error': 'Invalid signature', 'content-length': '0' }).end();
        return;
      }
    }

    let asset: StoredAsset | undefined;
    let requestedFormat: string | undefined;
    if (resourceType === 'raw') {
      asset = this.asset(account.cloudName, 'raw', type, decoded);
    } else {
      const slash = decoded.lastIndexOf('/');
      const dot = decoded.lastIndexOf('.');
      const hasExt = dot > slash + 1;
      const publicId = hasExt ? decoded.slice(0, dot) : decoded;
      requestedFormat = hasExt ? decoded.slice(dot + 1) : undefined;
      asset = this.asset(account.cloudName, resourceType, type, publicId);
      // A public ID that itself contains a dot, asked for without an extension.
      if (!asset && hasExt) {
        asset = this.asset(account.cloudName, resourceType, type, decoded);
        if (asset) requestedFormat = undefined;
      }
    }
    if (!asset) return notFound(decoded);
    if (this.denyDelivery?.test(asset.publicId)) {
      res.writeHead(401, { 'x-cld-error': 'deny or ACL failure', 'content-length': '0' }).end();
      return;
    }
    if (requestedFormat !== undefined && requestedFormat !== asset.format) {
      // Cloudinary would convert; the fake cannot, and says so rather than serve wrong bytes.
      res.writeHead(400, { 'x-cld-error': `fake: format conversion ${asset.format} -> ${requestedFormat} is not implemented`, 'content-length': '0' }).end();
      return;
    }
    if (resourceType === 'raw' && transformation && !/^fl_attachment(:[^/]*)?$/.test(transformation)) {
      res.writeHead(400, { 'x-cld-error': 'Transformations are not supported for raw files', 'content-length': '0' }).end();
      return;
    }
    const attachment = /(^|[,/])fl_attachment(:([^,/]*))?/.exec(transformation);
    const disposition = attachment
      ? `attachment; filename="${encodeURIComponent(attachment[3] ? `${attachment[3]}${asset.format ? `.${asset.format}` : ''}` : decoded.split('/').pop()!)}"`
      : undefined;
    if (transformation) res.setHeader('x-fake-transformation', transformation);
    this.sendAsset(req, res, asset, disposition);
  }

  private sendAsset(req: http.IncomingMessage, res: http.ServerResponse, asset: StoredAsset, disposition: string | undefined): void {
    const contentType = asset.resourceType === 'raw' ? mime.lookup(asset.publicId) || 'application/octet-stream' : FORMAT_TYPES[asset.format] ?? 'application/octet-stream';
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
