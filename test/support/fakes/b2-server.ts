/**
 * A fake Backblaze B2 (native API), written from Backblaze's API reference, for tests and
 * benchmarks. It checks what arrives the way B2 does: Basic auth on authorize (answered in the v1/v2,
 * v3 or v4 shape the path asks for), account tokens on every API call, application keys with
 * capabilities, bucket restrictions and a name prefix, upload tokens bound to their upload URL, the
 * SHA-1 of every upload and part (including `hex_digits_at_end`), Content-Length (no chunked
 * uploads), the file info rules (10 entries, 50-byte keys, percent-encoded values, the 7,000 /
 * 2,048-byte header limit), the minimum part size and the partSha1Array at finish. Errors are B2's
 * JSON bodies `{ status, code, message }`.
 *
 * Every behaviour, with the Backblaze page it comes from and what is not modelled, is listed in
 * ./b2-server.md (the fidelity ledger); keep the two in step.
 *
 * Fault controls: expire every token, fail the Nth matching call with a status (and Retry-After),
 * or cut the connection after N bytes of a request or response body.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

type BucketType = 'allPublic' | 'allPrivate';

/** A bucket's settings: its type, and whether Object Lock or default encryption (SSE-B2) is on. */
export interface FakeBucketSettings {
  type: BucketType;
  fileLock?: boolean;
  defaultEncryption?: boolean;
}

export interface FakeB2Options {
  /** The master application key (every capability, every bucket, no name prefix). */
  applicationKeyId?: string;
  applicationKey?: string;
  /** Buckets to create: name → type or settings. Default one private bucket `media-bucket`. */
  buckets?: Record<string, BucketType | FakeBucketSettings>;
  /** Sizes announced by authorize; B2 announces 100 MB and 5 MB. */
  recommendedPartSize?: number;
  absoluteMinimumPartSize?: number;
}

/** What b2_create_key takes: capabilities, the buckets (by name) and the name prefix it is restricted to. */
export interface FakeKeyOptions {
  capabilities?: string[];
  /** Bucket names; more than one makes a multi-bucket key, which authorizes only through v4. */
  buckets?: string[];
  namePrefix?: string;
}

interface FakeKey {
  applicationKeyId: string;
  applicationKey: string;
  capabilities: readonly string[];
  /** null: every bucket. */
  bucketIds: readonly string[] | null;
  namePrefix: string | null;
}

export interface FileVersion {
  fileId: string;
  fileName: string;
  bucketId: string;
  action: 'upload' | 'hide' | 'start';
  contentType: string;
  contentSha1: string;
  fileInfo: Record<string, string>;
  /** The X-Bz-Info-* values as downloads serve them: as sent with the upload, else percent-encoded. */
  infoHeaders: Record<string, string>;
  uploadTimestamp: number;
  data: Buffer;
}

interface LargeFile {
  version: FileVersion;
  parts: Map<number, { sha1: string; data: Buffer }>;
}

interface Bucket {
  bucketId: string;
  bucketName: string;
  bucketType: BucketType;
  fileLock: boolean;
  defaultEncryption: boolean;
}

interface DownloadAuth {
  bucketId: string;
  fileNamePrefix: string;
  expiresAt: number;
  contentDisposition?: string;
}

interface Fault {
  api: string;
  /** Calls of `api` still to let through before this fault fires. */
  skip: number;
  times: number;
  status?: number;
  /** B2 error code sent with `status`. */
  code?: string;
  /** Retry-After sent with `status` (seconds, or an HTTP date). */
  retryAfter?: number | string;
  /** Cut the connection after this many body bytes (request body for uploads, response body for downloads). */
  cutAfterBytes?: number;
}

type HostRole = 'auth' | 'api' | 'content';

class B2Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Upload URLs carry this version (what backblaze-b2's calls use); the JSON API answers on v2 to v4. */
const API_PREFIX = '/b2api/v2/';
const API_PATH = /^\/b2api\/(v[1-4])\/(.*)$/;
const MAX_VALID_DURATION = 604_800;
/** The capabilities of a master key (b2_create_key's list of valid values). */
const ALL_CAPABILITIES = [
  'listKeys',
  'writeKeys',
  'deleteKeys',
  'listAllBucketNames',
  'listBuckets',
  'readBuckets',
  'writeBuckets',
  'deleteBuckets',
  'readBucketRetentions',
  'writeBucketRetentions',
  'readBucketEncryption',
  'writeBucketEncryption',
  'writeBucketNotifications',
  'listFiles',
  'readFiles',
  'shareFiles',
  'writeFiles',
  'deleteFiles',
  'readBucketNotifications',
  'readFileLegalHolds',
  'writeFileLegalHolds',
  'readFileRetentions',
  'writeFileRetentions',
  'bypassGovernance',
];
const DEFAULT_KEY_CAPABILITIES = ['listBuckets', 'listFiles', 'readFiles', 'shareFiles', 'writeFiles', 'deleteFiles'];
/** File info rules: "Add File Information with the Native API" and b2_upload_file. */
const MAX_INFO_ENTRIES = 10;
const MAX_INFO_KEY_BYTES = 50;
const INFO_KEY = /^[A-Za-z0-9\-_.`~!#$%^&*'|+]+$/;
const KNOWN_B2_INFO = new Set(['b2-content-disposition', 'b2-content-language', 'b2-expires', 'b2-cache-control', 'b2-content-encoding']);
const HEADER_LIMIT = 7000;
const HEADER_LIMIT_ENCRYPTED_OR_LOCKED = 2048;
/** Headers b2_upload_file must not carry. */
const FORBIDDEN_UPLOAD_HEADERS = ['content-disposition', 'content-encoding', 'content-language', 'content-location', 'content-range', 'expires'];
/** The upload headers B2 counts with the file name and info ("along with the other necessary headers"). */
const COUNTED_UPLOAD_HEADERS = new Set(['authorization', 'content-type', 'content-length', 'x-bz-file-name', 'x-bz-content-sha1']);

function sha1(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

/**
 * X-Bz-File-Name and X-Bz-Info-* values are percent-encoded UTF-8; B2 also takes "+" for a space.
 * A value that is not valid percent-encoded UTF-8 is refused (400), stricter than B2 may be.
 */
function decodeHeaderValue(value: string, what: string): string {
  try {
    return decodeURIComponent(value.replace(/\+/g, ' '));
  } catch {
    throw new B2Error(400, 'bad_request', `${what} is not valid percent-encoded UTF-8`);
  }
}

/** Bytes of one header line as sent, CRLF included. */
function headerLineBytes(name: string, value: string): number {
  return Buffer.byteLength(`${name}: ${value}\r\n`);
}

/** The key, count and (for JSON) value rules for file info; returns the lower-cased info. */
function validFileInfo(info: Record<string, unknown>): Record<string, string> {
  const entries = Object.entries(info);
  if (entries.length > MAX_INFO_ENTRIES) throw new B2Error(400, 'bad_request', `Too many file info entries: ${entries.length} (max ${MAX_INFO_ENTRIES})`);
  const out: Record<string, string> = {};
  for (const [k, v] of entries) {
    if (Buffer.byteLength(k) > MAX_INFO_KEY_BYTES) throw new B2Error(400, 'bad_request', `File info name is longer than ${MAX_INFO_KEY_BYTES} bytes: ${k}`);
    if (!INFO_KEY.test(k)) throw new B2Error(400, 'bad_request', `Invalid character in file info name: ${k}`);
    const name = k.toLowerCase();
    if (name.startsWith('b2-') && !KNOWN_B2_INFO.has(name)) throw new B2Error(400, 'bad_request', `Unknown reserved file info name: ${k}`);
    if (typeof v !== 'string') throw new B2Error(400, 'bad_request', `File info value of ${k} must be a string`);
    out[name] = v;
  }
  return out;
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
    req.on('aborted', () => reject(new Error('request aborted')));
  });
}

export class FakeB2Server extends EventEmitter {
  readonly applicationKeyId: string;
  readonly applicationKey: string;
  readonly accountId = `acct${randomBytes(4).toString('hex')}`;
  readonly recommendedPartSize: number;
  readonly absoluteMinimumPartSize: number;
  /** Every API call by name (b2_upload_file, b2_list_file_names, download, download_head...), for tests to count. */
  readonly calls = new Map<string, number>();
  /** Upload URL used by each accepted or rejected b2_upload_file, in order. */
  readonly uploadUrlLog: Array<{ uploadUrl: string; status: number }> = [];
  /** Each upload's SHA-1 mode: 'given' or 'hex_digits_at_end'. */
  readonly sha1Modes: string[] = [];
  readonly buckets = new Map<string, Bucket>();
  /** Every version of every file, oldest first. */
  readonly versions: FileVersion[] = [];
  readonly unfinished = new Map<string, LargeFile>();
  /** Application keys by ID: the master key, and those made with {@link createKey}. */
  private readonly keys = new Map<string, FakeKey>();
  private readonly accountTokens = new Map<string, { key: FakeKey; expired: boolean }>();
  private readonly uploadTokens = new Map<string, { urlPath: string; expired: boolean; key: FakeKey; bucketId?: string; fileId?: string }>();
  private readonly downloadAuths = new Map<string, DownloadAuth>();
  private readonly faults: Fault[] = [];
  private readonly servers: http.Server[] = [];
  private seq = 0;
  /** The API host (authorize's `apiUrl`), like https://api005.backblazeb2.com. */
  url = '';
  /** The download and upload host (authorize's `downloadUrl`, and the upload URLs), like https://f005.backblazeb2.com. */
  downloadUrl = '';
  /** The host only authorize is called on, like https://api.backblazeb2.com. */
  private authUrl = '';
  /** What authorize and get_upload_url hand out instead of the real hosts (see {@link advertise}). */
  private advertised: { apiUrl?: string; downloadUrl?: string } = {};

  /** Uploads that arrived on an upload URL another upload was still using (B2 allows one at a time). */
  sharedUploadUrlUses = 0;
  /**
   * Uploads sent to an upload URL after it answered 408 or 5xx, or broke the connection. Backblaze
   * ("Upload Files with the Native API"): "You can use this URL until it returns a 50X error, at
   * which point you must request another upload URL"; b2_get_upload_url: valid "until the endpoint
   * rejects an upload". This fake goes further than B2 and answers every later upload there 503.
   */
  rejectedUploadUrlReuses = 0;
  private readonly rejectedUploadUrls = new Set<string>();
  private readonly uploadsInFlight = new Set<string>();

  constructor(options: FakeB2Options = {}) {
    super();
    this.applicationKeyId = options.applicationKeyId ?? `key${randomBytes(6).toString('hex')}`;
    this.applicationKey = options.applicationKey ?? `K${randomBytes(15).toString('base64url')}`;
    this.recommendedPartSize = options.recommendedPartSize ?? 100_000_000;
    this.absoluteMinimumPartSize = options.absoluteMinimumPartSize ?? 5_000_000;
    this.keys.set(this.applicationKeyId, {
      applicationKeyId: this.applicationKeyId,
      applicationKey: this.applicationKey,
      capabilities: ALL_CAPABILITIES,
      bucketIds: null,
      namePrefix: null,
    });
    for (const [name, settings] of Object.entries(options.buckets ?? { 'media-bucket': 'allPrivate' as const })) {
      const bucketId = randomBytes(12).toString('hex');
      const { type, fileLock = false, defaultEncryption = false } = typeof settings === 'string' ? { type: settings } : settings;
      this.buckets.set(name, { bucketId, bucketName: name, bucketType: type, fileLock, defaultEncryption });
    }
  }

  /** The v4 authorize endpoint (what a proxy in front of api.backblazeb2.com would be). */
  get authorizeUrl(): string {
    return this.authorizeUrlFor('v4');
  }

  /** The authorize endpoint of an API version: v1/v2 answer the flat shape backblaze-b2 reads, v3/v4 nest it under apiInfo. */
  authorizeUrlFor(version: 'v1' | 'v2' | 'v3' | 'v4'): string {
    return `${this.authUrl}/b2api/${version}/b2_authorize_account`;
  }

  /** b2_create_key: a key with these capabilities (default the six file ones), buckets and name prefix. */
  createKey(options: FakeKeyOptions = {}): { applicationKeyId: string; applicationKey: string } {
    const key: FakeKey = {
      applicationKeyId: `00${randomBytes(11).toString('hex')}`,
      applicationKey: `K00${randomBytes(15).toString('base64url')}`,
      capabilities: options.capabilities ?? DEFAULT_KEY_CAPABILITIES,
      bucketIds: options.buckets ? options.buckets.map((name) => this.bucket(name).bucketId) : null,
      namePrefix: options.namePrefix ?? null,
    };
    this.keys.set(key.applicationKeyId, key);
    return { applicationKeyId: key.applicationKeyId, applicationKey: key.applicationKey };
  }

  /**
   * Stores a file as other software may have written it, behind the API's checks: `infoHeaders`
   * gives X-Bz-Info-* values to serve verbatim (e.g. not valid percent-encoding, which this fake's
   * upload refuses). For tests of data the library did not write.
   */
  seedFile(
    bucketName: string,
    fileName: string,
    data: Buffer,
    options: { contentType?: string; fileInfo?: Record<string, string>; infoHeaders?: Record<string, string> } = {},
  ): FileVersion {
    const fileInfo = { ...(options.fileInfo ?? {}) };
    const infoHeaders = Object.fromEntries(Object.entries(fileInfo).map(([k, v]) => [k, encodeURIComponent(v)]));
    for (const [k, raw] of Object.entries(options.infoHeaders ?? {})) {
      infoHeaders[k] = raw;
      fileInfo[k] ??= raw;
    }
    const version: FileVersion = {
      fileId: this.nextId('4_z'),
      fileName,
      bucketId: this.bucket(bucketName).bucketId,
      action: 'upload',
      contentType: options.contentType ?? 'application/octet-stream',
      contentSha1: sha1(data),
      fileInfo,
      infoHeaders,
      uploadTimestamp: Date.now(),
      data,
    };
    this.versions.push(version);
    return version;
  }

  /**
   * Three hosts, as B2 has: authorize only on the first; the JSON API on `apiUrl`; downloads and
   * uploads on `downloadUrl`. A client that builds a URL from anything but the authorize response
   * (or an upload URL B2 gave it) hits the wrong host and gets 404.
   */
  async start(): Promise<this> {
    const listen = async (role: HostRole): Promise<string> => {
      const server = http.createServer((req, res) => {
        this.handle(req, res, role).catch((err) => {
          if (!res.headersSent) this.sendError(res, new B2Error(500, 'internal_error', String(err)));
          else res.destroy();
        });
      });
      server.keepAliveTimeout = 1000;
      this.servers.push(server);
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    };
    this.authUrl = await listen('auth');
    this.url = await listen('api');
    this.downloadUrl = await listen('content');
    return this;
  }

  async close(): Promise<void> {
    await Promise.all(
      this.servers.splice(0).map(
        (server) =>
          new Promise<void>((resolve) => {
            server.closeAllConnections();
            server.close(() => resolve());
          }),
      ),
    );
  }

  // ------------------------------------------------------------------ fault controls and views

  /**
   * Makes authorize (apiUrl, downloadUrl) and the upload URLs point at other hosts, e.g. proxies in
   * front of this fake's API and content hosts, so that every later request crosses them too.
   */
  advertise(urls: { apiUrl?: string; downloadUrl?: string }): void {
    this.advertised = { ...urls };
  }

  /** Marks every account and upload token issued so far as expired (401 expired_auth_token). */
  expireTokens(): void {
    for (const t of this.accountTokens.values()) t.expired = true;
    for (const t of this.uploadTokens.values()) t.expired = true;
  }

  /**
   * Fails calls of `api` with `status`: the `nth` call from now (1 = the next), then `times - 1`
   * more; with `retryAfter`, the answer carries Retry-After (B2 may send one with 429 and 503).
   */
  failCall(api: string, options: { nth?: number; status?: number; code?: string; times?: number; retryAfter?: number | string } = {}): void {
    this.faults.push({
      api,
      skip: (options.nth ?? 1) - 1,
      times: options.times ?? 1,
      status: options.status ?? 503,
      code: options.code,
      retryAfter: options.retryAfter,
    });
  }

  /** Drops every fault not yet fired. */
  clearFaults(): void {
    this.faults.length = 0;
  }

  /** Cuts the connection of the `nth` call of `api` from now after `afterBytes` bytes of its body. */
  cutConnection(api: string, afterBytes: number, options: { nth?: number } = {}): void {
    this.faults.push({ api, skip: (options.nth ?? 1) - 1, times: 1, cutAfterBytes: afterBytes });
  }

  count(api: string): number {
    return this.calls.get(api) ?? 0;
  }

  bucket(name: string): Bucket {
    const b = this.buckets.get(name);
    if (!b) throw new Error(`no bucket ${name}`);
    return b;
  }

  /** Every version (uploads and hide markers) stored under a name. */
  versionsOf(bucketName: string, fileName: string): FileVersion[] {
    const { bucketId } = this.bucket(bucketName);
    return this.versions.filter((v) => v.bucketId === bucketId && v.fileName === fileName);
  }

  /** Large files started and neither finished nor cancelled. */
  unfinishedLargeFiles(bucketName?: string): FileVersion[] {
    const bucketId = bucketName ? this.bucket(bucketName).bucketId : undefined;
    return [...this.unfinished.values()].map((l) => l.version).filter((v) => !bucketId || v.bucketId === bucketId);
  }

  // ------------------------------------------------------------------ plumbing

  private nextId(prefix: string): string {
    this.seq++;
    return `${prefix}_${String(this.seq).padStart(10, '0')}_${randomBytes(6).toString('hex')}`;
  }

  private takeFault(api: string): Fault | undefined {
    for (let i = 0; i < this.faults.length; i++) {
      const f = this.faults[i]!;
      if (f.api !== api) continue;
      if (f.skip > 0) {
        f.skip--;
        continue;
      }
      f.times--;
      if (f.times <= 0) this.faults.splice(i, 1);
      return f;
    }
    return undefined;
  }

  private sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
    const data = Buffer.from(JSON.stringify(body));
    res.writeHead(status, {
      'Content-Type': 'application/json;charset=utf-8',
      'Content-Length': data.length,
      'Cache-Control': 'max-age=0, no-cache, no-store',
      ...headers,
    });
    res.end(data);
  }

  private sendError(res: http.ServerResponse, err: B2Error): void {
    this.sendJson(res, err.status, { status: err.status, code: err.code, message: err.message }, err.headers);
  }

  /** The key behind the request's account token. */
  private checkAccountToken(req: http.IncomingMessage): FakeKey {
    const token = req.headers.authorization;
    if (!token) throw new B2Error(401, 'bad_auth_token', 'Missing Authorization header');
    const entry = this.accountTokens.get(token);
    if (!entry) throw new B2Error(401, 'bad_auth_token', 'Invalid authorization token');
    if (entry.expired) throw new B2Error(401, 'expired_auth_token', 'Authorization token has expired');
    return entry.key;
  }

  /**
   * 401 unauthorized unless the key has `capability`, may use the bucket, and (when a name or a
   * listing prefix is given) the name starts with the key's namePrefix. B2 answers 401 for all
   * three ("Application Keys"; b2_start_large_file "API Versions": a key without the right
   * permissions gets 401 Unauthorized).
   */
  private allow(key: FakeKey, capability: string, bucketId?: string, name?: string): void {
    if (!key.capabilities.includes(capability)) throw new B2Error(401, 'unauthorized', `The application key does not have the ${capability} capability`);
    if (bucketId !== undefined && key.bucketIds && !key.bucketIds.includes(bucketId))
      throw new B2Error(401, 'unauthorized', `The application key is not allowed to use bucket ${bucketId}`);
    if (name !== undefined && key.namePrefix !== null && !name.startsWith(key.namePrefix))
      throw new B2Error(401, 'unauthorized', `The application key is restricted to file names starting with "${key.namePrefix}"`);
  }

  /** The header limit for a bucket: 2,048 bytes with Object Lock or encryption, else 7,000. */
  private headerLimit(bucket: Bucket, encryptedUpload = false): number {
    return bucket.fileLock || bucket.defaultEncryption || encryptedUpload ? HEADER_LIMIT_ENCRYPTED_OR_LOCKED : HEADER_LIMIT;
  }

  /**
   * For JSON calls (b2_start_large_file, b2_copy_file): the file name, info and content type as the
   * header lines a download would serve must fit the limit.
   */
  private checkInfoSize(bucket: Bucket, fileName: string, info: Record<string, string>, contentType: string): void {
    let bytes = headerLineBytes('X-Bz-File-Name', encodeURIComponent(fileName)) + headerLineBytes('Content-Type', contentType);
    for (const [k, v] of Object.entries(info)) bytes += headerLineBytes(`X-Bz-Info-${k}`, encodeURIComponent(v));
    const limit = this.headerLimit(bucket);
    if (bytes > limit) throw new B2Error(400, 'bad_request', `File name and file info take ${bytes} bytes; the limit is ${limit}`);
  }

  private bucketById(bucketId: unknown): Bucket {
    for (const b of this.buckets.values()) if (b.bucketId === bucketId) return b;
    throw new B2Error(400, 'bad_bucket_id', `Invalid bucketId: ${String(bucketId)}`);
  }

  private fileJson(v: FileVersion, withAccount = true): Record<string, unknown> {
    return {
      ...(withAccount ? { accountId: this.accountId } : {}),
      action: v.action,
      bucketId: v.bucketId,
      contentLength: v.action === 'upload' ? v.data.length : 0,
      contentSha1: v.action === 'upload' ? v.contentSha1 : v.action === 'start' ? 'none' : null,
      contentMd5: v.action === 'upload' && v.contentSha1 !== 'none' ? createHash('md5').update(v.data).digest('hex') : null,
      contentType: v.contentType,
      fileId: v.fileId,
      fileInfo: v.fileInfo,
      fileName: v.fileName,
      uploadTimestamp: v.uploadTimestamp,
    };
  }

  /**
   * An upload's file info from its X-Bz-Info-* headers, checked as B2 does: the info rules, values
   * percent-encoded, and the counted header lines (name, info and the other necessary headers, as
   * sent, CRLF included) within the bucket's limit. Also returns the values as sent, which
   * downloads serve back ("The same info headers sent with the upload will be returned with the download").
   */
  private fileInfoFromHeaders(req: http.IncomingMessage, bucket: Bucket): { fileInfo: Record<string, string>; infoHeaders: Record<string, string> } {
    const raw: Record<string, string> = {};
    const sent: Record<string, string> = {};
    let bytes = 0;
    for (let i = 0; i < req.rawHeaders.length; i += 2) {
      const name = req.rawHeaders[i]!;
      const value = req.rawHeaders[i + 1]!;
      const lower = name.toLowerCase();
      if (lower.startsWith('x-bz-info-')) {
        const key = name.slice('x-bz-info-'.length);
        raw[key] = decodeHeaderValue(value, `X-Bz-Info-${key}`);
        sent[key.toLowerCase()] = value;
      }
      if (lower.startsWith('x-bz-info-') || COUNTED_UPLOAD_HEADERS.has(lower)) bytes += headerLineBytes(name, value);
    }
    const fileInfo = validFileInfo(raw);
    const limit = this.headerLimit(bucket, req.headers['x-bz-server-side-encryption'] !== undefined);
    if (bytes > limit) throw new B2Error(400, 'bad_request', `The file name, file info and other headers take ${bytes} bytes; the limit is ${limit}`);
    return { fileInfo, infoHeaders: sent };
  }

  private validFileName(name: unknown): string {
    if (typeof name !== 'string' || name.length === 0) throw new B2Error(400, 'bad_request', 'fileName is required');
    if (Buffer.byteLength(name) > 1024) throw new B2Error(400, 'bad_request', 'File names must be at most 1024 bytes');

    if (/[\u0000-\u001f\u007f]/.test(name)) throw new B2Error(400, 'bad_request', 'File names must not contain control characters');
    if (name.startsWith('/') || name.endsWith('/') || name.includes('//')) throw new B2Error(400, 'bad_request', 'Invalid file name');
    if (name.split('/').some((s) => Buffer.byteLength(s) > 250)) throw new B2Error(400, 'bad_request', 'File name segments must be at most 250 bytes');
    return name;
  }

  /**
   * Reads an upload body, checking Content-Length and the SHA-1 (given, or the last 40 bytes with
   * hex_digits_at_end). Cuts the connection when a fault says so; the partial body is discarded.
   */
  private async receiveUpload(req: http.IncomingMessage, fault: Fault | undefined): Promise<{ data: Buffer; sha1: string } | undefined> {
    if (req.headers['transfer-encoding']) throw new B2Error(400, 'bad_request', 'Chunked transfer encoding is not supported; send Content-Length');
    const lengthHeader = req.headers['content-length'];
    if (lengthHeader === undefined || !/^\d+$/.test(lengthHeader)) throw new B2Error(411, 'bad_request', 'Missing Content-Length');
    const declared = Number(lengthHeader);
    const sha1Header = req.headers['x-bz-content-sha1'];
    if (typeof sha1Header !== 'string') throw new B2Error(400, 'bad_request', 'Missing X-Bz-Content-Sha1');
    if (fault?.cutAfterBytes !== undefined) {
      await new Promise<void>((resolve) => {
        let seen = 0;
        req.on('data', (c: Buffer) => {
          seen += c.length;
          if (seen >= fault.cutAfterBytes!) {
            req.socket.destroy();
            resolve();
          }
        });
        req.on('end', () => {
          req.socket.destroy();
          resolve();
        });
        req.on('close', () => resolve());
      });
      return undefined;
    }
    const body = await readBody(req);
    if (body.length !== declared) throw new B2Error(400, 'bad_request', `Content-Length ${declared} does not match ${body.length} bytes received`);
    let data = body;
    let expected = sha1Header.toLowerCase();
    if (expected === 'hex_digits_at_end') {
      if (body.length < 40) throw new B2Error(400, 'bad_request', 'Body too short for hex_digits_at_end');
      data = body.subarray(0, body.length - 40);
      expected = body
        .subarray(body.length - 40)
        .toString('latin1')
        .toLowerCase();
      this.sha1Modes.push('hex_digits_at_end');
    } else if (expected === 'do_not_verify') {
      this.sha1Modes.push('do_not_verify');
      return { data, sha1: sha1(data) };
    } else {
      this.sha1Modes.push('given');
    }
    if (!/^[0-9a-f]{40}$/.test(expected)) throw new B2Error(400, 'bad_request', 'X-Bz-Content-Sha1 must be 40 hex digits');
    const actual = sha1(data);
    if (actual !== expected) throw new B2Error(400, 'bad_request', 'Sha1 did not match data received');
    return { data, sha1: actual };
  }

  // ------------------------------------------------------------------ request routing

  private async handle(req: http.IncomingMessage, res: http.ServerResponse, role: HostRole): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const path = url.pathname;
    const versioned = API_PATH.exec(path);
    const version = versioned?.[1] ?? '';
    let api: string;
    if (path.startsWith('/file/')) api = req.method === 'HEAD' ? 'download_head' : 'download';
    else if (path.startsWith(`${API_PREFIX}b2_upload_file/`)) api = 'b2_upload_file';
    else if (path.startsWith(`${API_PREFIX}b2_upload_part/`)) api = 'b2_upload_part';
    else if (versioned) api = versioned[2]!;
    else api = 'unknown';
    this.calls.set(api, (this.calls.get(api) ?? 0) + 1);
    this.emit('call', api);
    const fault = this.takeFault(api);
    try {
      const served =
        api === 'b2_authorize_account'
          ? 'auth'
          : api === 'download' || api === 'download_head' || api === 'b2_upload_file' || api === 'b2_upload_part'
            ? 'content'
            : 'api';
      if (served !== role) {
        req.resume();
        throw new B2Error(404, 'not_found', `${api} is not served on this host (${role}); use the URLs from b2_authorize_account`);
      }
      const upload = api === 'b2_upload_file' || api === 'b2_upload_part';
      if (upload && this.rejectedUploadUrls.has(path)) {
        this.rejectedUploadUrlReuses++;
        throw new B2Error(503, 'service_unavailable', 'This upload URL rejected an upload before: get a new one (b2_get_upload_url)');
      }
      if (upload && fault && (fault.cutAfterBytes !== undefined || fault.status === 408 || (fault.status ?? 0) >= 500)) this.rejectedUploadUrls.add(path);
      if (fault?.status !== undefined) {
        req.resume();
        const defaultCode = { 503: 'service_unavailable', 429: 'too_many_requests', 408: 'request_timeout' }[fault.status] ?? 'internal_error';
        throw new B2Error(
          fault.status,
          fault.code ?? defaultCode,
          'Injected fault',
          fault.retryAfter === undefined ? {} : { 'Retry-After': String(fault.retryAfter) },
        );
      }
      if (api === 'download' || api === 'download_head') return await this.download(req, res, url, fault);
      if (api === 'b2_upload_file') return await this.uploadFile(req, res, path, fault);
      if (api === 'b2_upload_part') return await this.uploadPart(req, res, path, fault);
      if (api === 'b2_authorize_account') return this.authorize(req, res, version);
      // Calls other than authorize answer the same on v2, v3 and v4 ("Native API Versions").
      if (version === 'v1') throw new B2Error(404, 'not_found', `${api} is served on b2api v2 to v4 here`);
      if (req.method !== 'POST' && req.method !== 'GET') throw new B2Error(405, 'method_not_allowed', `${req.method} not allowed`);
      const raw = req.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
      let params: Record<string, unknown>;
      try {
        params = req.method === 'POST' ? (raw.length ? JSON.parse(raw.toString('utf8')) : {}) : Object.fromEntries(url.searchParams);
      } catch {
        throw new B2Error(400, 'bad_json', 'Request body is not valid JSON');
      }
      const key = this.checkAccountToken(req);
      const handler = this.apiHandlers[api];
      if (!handler) throw new B2Error(404, 'not_found', `Unknown API ${api}`);
      this.sendJson(res, 200, handler(params, key));
    } catch (err) {
      if (err instanceof B2Error) {
        if (api === 'b2_upload_file') this.uploadUrlLog.push({ uploadUrl: `${this.downloadUrl}${path}`, status: err.status });
        // Drain what the client still sends, so it reads our answer rather than a reset.
        req.resume();
        this.sendError(res, err);
        return;
      }
      throw err;
    }
  }

  /**
   * b2_authorize_account in the shape of the path's version: v1/v2 flat with `allowed`; v3 under
   * apiInfo.storageApi with bucketId/bucketName/capabilities/namePrefix; v4 under
   * apiInfo.storageApi with `allowed: { buckets, capabilities, namePrefix }`. Multi-bucket keys are
   * refused before v4.
   */
  private authorize(req: http.IncomingMessage, res: http.ServerResponse, version: string): void {
    req.resume();
    const header = req.headers.authorization ?? '';
    const match = /^Basic (.+)$/.exec(header);
    const [id, secret] = match ? Buffer.from(match[1]!, 'base64').toString('utf8').split(/:(.*)/s) : [];
    const key = id === undefined ? undefined : this.keys.get(id);
    if (!key || key.applicationKey !== secret) throw new B2Error(401, 'unauthorized', 'Invalid applicationKeyId or applicationKey');
    if (version !== 'v4' && key.bucketIds && key.bucketIds.length > 1)
      throw new B2Error(400, 'bad_request', 'Multi-bucket application keys can only be used with b2api/v4/b2_authorize_account');
    const token = `4_${randomBytes(24).toString('base64url')}`;
    this.accountTokens.set(token, { key, expired: false });
    const buckets =
      key.bucketIds?.map((bucketId) => ({ id: bucketId, name: [...this.buckets.values()].find((b) => b.bucketId === bucketId)?.bucketName ?? null })) ?? null;
    const storage = {
      apiUrl: this.advertised.apiUrl ?? this.url,
      downloadUrl: this.advertised.downloadUrl ?? this.downloadUrl,
      s3ApiUrl: this.url,
      recommendedPartSize: this.recommendedPartSize,
      absoluteMinimumPartSize: this.absoluteMinimumPartSize,
    };
    const single = { bucketId: buckets?.[0]?.id ?? null, bucketName: buckets?.[0]?.name ?? null, capabilities: key.capabilities, namePrefix: key.namePrefix };
    if (version === 'v4') {
      return this.sendJson(res, 200, {
        accountId: this.accountId,
        authorizationToken: token,
        apiInfo: { storageApi: { ...storage, allowed: { buckets, capabilities: key.capabilities, namePrefix: key.namePrefix } } },
      });
    }
    if (version === 'v3') {
      return this.sendJson(res, 200, {
        accountId: this.accountId,
        authorizationToken: token,
        apiInfo: { storageApi: { ...storage, ...single, infoType: 'storageApi' } },
      });
    }
    this.sendJson(res, 200, { accountId: this.accountId, authorizationToken: token, allowed: single, ...storage, minimumPartSize: this.recommendedPartSize });
  }

  private issueUploadToken(urlPath: string, key: FakeKey, extra: { bucketId?: string; fileId?: string }): { uploadUrl: string; authorizationToken: string } {
    const authorizationToken = `4_upload_${randomBytes(18).toString('base64url')}`;
    this.uploadTokens.set(authorizationToken, { urlPath, expired: false, key, ...extra });
    return { uploadUrl: `${this.advertised.downloadUrl ?? this.downloadUrl}${urlPath}`, authorizationToken };
  }

  private checkUploadToken(req: http.IncomingMessage, path: string): { key: FakeKey; bucketId?: string; fileId?: string } {
    const token = req.headers.authorization;
    const entry = token ? this.uploadTokens.get(token) : undefined;
    if (!entry || entry.urlPath !== path) throw new B2Error(401, 'bad_auth_token', 'Invalid upload authorization token for this URL');
    if (entry.expired) throw new B2Error(401, 'expired_auth_token', 'Upload authorization token has expired');
    return entry;
  }

  /**
   * One upload at a time per upload URL and token: a second one while the first is in flight gets
   * 400 auth_token_limit, as B2 answers (b2sdk's UploadTokenUsedConcurrently matches that message).
   */
  private claimUploadUrl(req: http.IncomingMessage, path: string): void {
    if (this.uploadsInFlight.has(path)) {
      this.sharedUploadUrlUses++;
      throw new B2Error(400, 'auth_token_limit', `more than one upload using auth token ${String(req.headers.authorization)}`);
    }
    this.uploadsInFlight.add(path);
    req.once('close', () => this.uploadsInFlight.delete(path));
  }

  private latestVersion(bucketId: string, fileName: string): FileVersion | undefined {
    for (let i = this.versions.length - 1; i >= 0; i--) {
      const v = this.versions[i]!;
      if (v.bucketId === bucketId && v.fileName === fileName) return v;
    }
    return undefined;
  }

  private async uploadFile(req: http.IncomingMessage, res: http.ServerResponse, path: string, fault: Fault | undefined): Promise<void> {
    if (req.method !== 'POST') throw new B2Error(405, 'method_not_allowed', 'POST required');
    const { bucketId, key } = this.checkUploadToken(req, path);
    this.claimUploadUrl(req, path);
    const forbidden = FORBIDDEN_UPLOAD_HEADERS.find((h) => req.headers[h] !== undefined);
    if (forbidden) throw new B2Error(400, 'bad_request', `The ${forbidden} header must not be sent with b2_upload_file; use b2-* file info`);
    const fileName = this.validFileName(decodeHeaderValue(String(req.headers['x-bz-file-name'] ?? ''), 'X-Bz-File-Name'));
    this.allow(key, 'writeFiles', bucketId, fileName);
    const { fileInfo, infoHeaders } = this.fileInfoFromHeaders(req, this.bucketById(bucketId));
    const contentType = String(req.headers['content-type'] ?? 'b2/x-auto');
    const received = await this.receiveUpload(req, fault);
    if (!received) return; // connection cut: nothing stored
    const version: FileVersion = {
      fileId: this.nextId('4_z'),
      fileName,
      bucketId: bucketId!,
      action: 'upload',
      contentType: contentType === 'b2/x-auto' ? 'application/octet-stream' : contentType,
      contentSha1: received.sha1,
      fileInfo,
      infoHeaders,
      uploadTimestamp: Date.now(),
      data: received.data,
    };
    this.versions.push(version);
    this.uploadUrlLog.push({ uploadUrl: `${this.downloadUrl}${path}`, status: 200 });
    this.sendJson(res, 200, this.fileJson(version));
  }

  private async uploadPart(req: http.IncomingMessage, res: http.ServerResponse, path: string, fault: Fault | undefined): Promise<void> {
    if (req.method !== 'POST') throw new B2Error(405, 'method_not_allowed', 'POST required');
    const { fileId } = this.checkUploadToken(req, path);
    this.claimUploadUrl(req, path);
    const large = this.unfinished.get(fileId!);
    if (!large) throw new B2Error(400, 'bad_request', 'No such unfinished large file');
    const partNumber = Number(req.headers['x-bz-part-number']);
    if (!Number.isInteger(partNumber) || partNumber < 1 || partNumber > 10_000) throw new B2Error(400, 'bad_request', 'X-Bz-Part-Number must be 1..10000');
    const received = await this.receiveUpload(req, fault);
    if (!received) return;
    large.parts.set(partNumber, { sha1: received.sha1, data: received.data });
    this.sendJson(res, 200, { fileId, partNumber, contentLength: received.data.length, contentSha1: received.sha1, uploadTimestamp: Date.now() });
  }

  private download(req: http.IncomingMessage, res: http.ServerResponse, url: URL, fault: Fault | undefined): void {
    req.resume();
    const rest = url.pathname.slice('/file/'.length);
    const slash = rest.indexOf('/');
    if (slash < 0) throw new B2Error(400, 'bad_request', 'Missing file name');
    const bucketName = decodeURIComponent(rest.slice(0, slash));
    const fileName = decodeURIComponent(rest.slice(slash + 1));
    const bucket = this.buckets.get(bucketName);
    if (!bucket) throw new B2Error(404, 'not_found', `Bucket ${bucketName} does not exist`);
    const token = req.headers.authorization ?? url.searchParams.get('Authorization') ?? undefined;
    const dispositionParam = url.searchParams.get('b2ContentDisposition') ?? undefined;
    let authorized = bucket.bucketType === 'allPublic' && dispositionParam === undefined;
    if (token) {
      const account = this.accountTokens.get(token);
      const share = this.downloadAuths.get(token);
      if (account) {
        if (account.expired) throw new B2Error(401, 'expired_auth_token', 'Authorization token has expired');
        // An account token must be allowed to read the file, even in a public bucket.
        this.allow(account.key, 'readFiles', bucket.bucketId, fileName);
        authorized = true;
      } else if (share) {
        if (share.expiresAt < Date.now()) throw new B2Error(401, 'expired_auth_token', 'Download authorization has expired');
        if (share.bucketId !== bucket.bucketId || !fileName.startsWith(share.fileNamePrefix))
          throw new B2Error(401, 'unauthorized', 'Download authorization does not cover this file');
        if (share.contentDisposition !== undefined && share.contentDisposition !== dispositionParam)
          throw new B2Error(401, 'unauthorized', 'b2ContentDisposition does not match the authorization');
        authorized = true;
      } else {
        throw new B2Error(401, 'bad_auth_token', 'Invalid authorization token');
      }
    }
    if (!authorized)
      throw new B2Error(
        401,
        'unauthorized',
        bucket.bucketType === 'allPublic' ? 'b2ContentDisposition requires an authorization token' : 'Bucket is private; an authorization token is required',
      );
    const version = this.latestVersion(bucket.bucketId, fileName);
    if (!version || version.action !== 'upload') throw new B2Error(404, 'not_found', `File with such name does not exist: ${fileName}`);
    const size = version.data.length;
    let start = 0;
    let end = size - 1;
    let status = 200;
    const range = req.headers.range;
    if (range) {
      const m = /^bytes=(\d*)-(\d*)$/.exec(range);
      if (!m || (m[1] === '' && m[2] === '')) throw new B2Error(416, 'range_not_satisfiable', `Invalid range ${range}`);
      if (m[1] === '') {
        start = Math.max(0, size - Number(m[2]));
      } else {
        start = Number(m[1]);
        if (m[2] !== '') end = Math.min(end, Number(m[2]));
      }
      if (start >= size || start > end) throw new B2Error(416, 'range_not_satisfiable', `The range ${range} is not satisfiable for ${size} bytes`);
      status = 206;
    }
    const headers: Record<string, string | number> = {
      'Content-Type': version.contentType,
      'Content-Length': end - start + 1,
      'Accept-Ranges': 'bytes',
      'X-Bz-File-Id': version.fileId,
      'X-Bz-File-Name': encodeURIComponent(version.fileName),
      'X-Bz-Content-Sha1': version.contentSha1,
      'X-Bz-Upload-Timestamp': String(version.uploadTimestamp),
    };
    if (status === 206) headers['Content-Range'] = `bytes ${start}-${end}/${size}`;
    // b2-* info is served as the standard header it names; the rest as X-Bz-Info-*, as it was sent.
    const standard: Record<string, string> = {
      'b2-cache-control': 'Cache-Control',
      'b2-content-disposition': 'Content-Disposition',
      'b2-content-language': 'Content-Language',
      'b2-expires': 'Expires',
      'b2-content-encoding': 'Content-Encoding',
    };
    for (const [k, v] of Object.entries(version.fileInfo)) {
      if (standard[k]) headers[standard[k]] = v;
      else if (!k.startsWith('b2-')) headers[`X-Bz-Info-${k}`] = version.infoHeaders[k] ?? encodeURIComponent(v);
    }
    if (dispositionParam !== undefined) headers['Content-Disposition'] = dispositionParam;
    res.writeHead(status, headers);
    const slice = version.data.subarray(start, end + 1);
    if (req.method === 'HEAD') return void res.end();
    if (fault?.cutAfterBytes !== undefined) {
      res.write(slice.subarray(0, Math.min(fault.cutAfterBytes, slice.length)), () => res.socket?.destroy());
      return;
    }
    res.end(slice);
  }

  // ------------------------------------------------------------------ JSON API calls

  /** The version a fileId names, checked against the key (capability, bucket, name). */
  private versionForKey(key: FakeKey, capability: string, fileId: unknown): FileVersion | undefined {
    const v = this.versions.find((x) => x.fileId === fileId) ?? this.unfinished.get(String(fileId))?.version;
    if (v) this.allow(key, capability, v.bucketId, v.fileName);
    else this.allow(key, capability);
    return v;
  }

  private readonly apiHandlers: Record<string, (p: Record<string, unknown>, key: FakeKey) => unknown> = {
    b2_list_buckets: (p, key) => {
      if (p.accountId !== this.accountId) throw new B2Error(400, 'bad_request', 'accountId does not match');
      this.allow(key, 'listBuckets');
      const list = [...this.buckets.values()].filter((b) => (!p.bucketName || b.bucketName === p.bucketName) && (!p.bucketId || b.bucketId === p.bucketId));
      // b2_list_buckets: a bucket-restricted key must name one of its buckets, or the request is denied.
      if (key.bucketIds && (!(p.bucketName || p.bucketId) || list.some((b) => !key.bucketIds!.includes(b.bucketId))))
        throw new B2Error(401, 'unauthorized', 'The application key is restricted: name one of its buckets with bucketId or bucketName');
      const readable = (capability: string): boolean => key.capabilities.includes(capability);
      return {
        buckets: list.map((b) => ({
          accountId: this.accountId,
          bucketId: b.bucketId,
          bucketName: b.bucketName,
          bucketType: b.bucketType,
          bucketInfo: {},
          corsRules: [],
          lifecycleRules: [],
          revision: 1,
          options: [],
          fileLockConfiguration: readable('readBucketRetentions')
            ? { isClientAuthorizedToRead: true, value: { defaultRetention: { mode: null, period: null }, isFileLockEnabled: b.fileLock } }
            : { isClientAuthorizedToRead: false, value: null },
          defaultServerSideEncryption: readable('readBucketEncryption')
            ? { isClientAuthorizedToRead: true, value: b.defaultEncryption ? { algorithm: 'AES256', mode: 'SSE-B2' } : { mode: null } }
            : { isClientAuthorizedToRead: false, value: null },
        })),
      };
    },
    b2_get_upload_url: (p, key) => {
      const bucket = this.bucketById(p.bucketId);
      this.allow(key, 'writeFiles', bucket.bucketId);
      return {
        bucketId: bucket.bucketId,
        ...this.issueUploadToken(`${API_PREFIX}b2_upload_file/${bucket.bucketId}/${this.nextId('c001_v')}`, key, { bucketId: bucket.bucketId }),
      };
    },
    b2_list_file_names: (p, key) => {
      const bucket = this.bucketById(p.bucketId);
      const max = this.maxCount(p.maxFileCount);
      const prefix = typeof p.prefix === 'string' ? p.prefix : '';
      this.allow(key, 'listFiles', bucket.bucketId, prefix);
      const start = typeof p.startFileName === 'string' ? p.startFileName : '';
      const names = new Map<string, FileVersion>();
      for (const v of this.versions) if (v.bucketId === bucket.bucketId) names.set(v.fileName, v);
      // Only names whose latest version is an upload: hidden files are not listed.
      const sorted = [...names.values()]
        .filter((v) => v.action === 'upload' && v.fileName.startsWith(prefix) && compareNames(v.fileName, start) >= 0)
        .sort((a, b) => compareNames(a.fileName, b.fileName));
      const page = sorted.slice(0, max);
      return { files: page.map((v) => this.fileJson(v)), nextFileName: sorted.length > max ? sorted[max]!.fileName : null };
    },
    b2_list_file_versions: (p, key) => {
      const bucket = this.bucketById(p.bucketId);
      const max = this.maxCount(p.maxFileCount);
      const prefix = typeof p.prefix === 'string' ? p.prefix : '';
      this.allow(key, 'listFiles', bucket.bucketId, prefix);
      const startName = typeof p.startFileName === 'string' ? p.startFileName : '';
      const startId = typeof p.startFileId === 'string' ? p.startFileId : undefined;
      if (startId && !startName) throw new B2Error(400, 'bad_request', 'startFileId requires startFileName');
      // Name order, and newest first within a name.
      const all = [...this.versions, ...[...this.unfinished.values()].map((l) => l.version)]
        .filter((v) => v.bucketId === bucket.bucketId && v.fileName.startsWith(prefix))
        .sort((a, b) => compareNames(a.fileName, b.fileName) || b.uploadTimestamp - a.uploadTimestamp || compareNames(b.fileId, a.fileId));
      let from = all.findIndex((v) => compareNames(v.fileName, startName) >= 0);
      if (from < 0) from = all.length;
      if (startId) {
        const exact = all.findIndex((v) => v.fileName === startName && v.fileId === startId);
        if (exact >= 0) from = exact;
      }
      const page = all.slice(from, from + max);
      const next = all[from + max];
      return { files: page.map((v) => this.fileJson(v)), nextFileName: next?.fileName ?? null, nextFileId: next?.fileId ?? null };
    },
    b2_get_file_info: (p, key) => {
      const v = this.versionForKey(key, 'readFiles', p.fileId);
      if (!v) throw new B2Error(404, 'not_found', `File not present: ${String(p.fileId)}`);
      return this.fileJson(v);
    },
    b2_hide_file: (p, key) => {
      const bucket = this.bucketById(p.bucketId);
      const fileName = this.validFileName(p.fileName);
      this.allow(key, 'writeFiles', bucket.bucketId, fileName);
      const latest = this.latestVersion(bucket.bucketId, fileName);
      // hide_file answers 400 no_such_file (b2sdk's interpret_b2_error notes the same).
      if (!latest) throw new B2Error(400, 'no_such_file', `File not present: ${fileName}`);
      if (latest.action === 'hide') throw new B2Error(400, 'already_hidden', `File already hidden: ${fileName}`);
      const marker: FileVersion = {
        fileId: this.nextId('4_z'),
        fileName,
        bucketId: bucket.bucketId,
        action: 'hide',
        contentType: 'application/x-bz-hide-marker',
        contentSha1: '',
        fileInfo: {},
        infoHeaders: {},
        uploadTimestamp: Date.now(),
        data: Buffer.alloc(0),
      };
      this.versions.push(marker);
      return this.fileJson(marker);
    },
    b2_delete_file_version: (p, key) => {
      this.allow(key, 'deleteFiles', undefined, typeof p.fileName === 'string' ? p.fileName : '');
      const i = this.versions.findIndex((v) => v.fileId === p.fileId);
      if (i >= 0) this.allow(key, 'deleteFiles', this.versions[i]!.bucketId);
      if (i < 0 || this.versions[i]!.fileName !== p.fileName) {
        if (this.unfinished.has(String(p.fileId))) throw new B2Error(400, 'bad_request', 'Unfinished large files must be cancelled with b2_cancel_large_file');
        throw new B2Error(400, 'file_not_present', `File not present: ${String(p.fileName)} ${String(p.fileId)}`);
      }
      this.versions.splice(i, 1);
      return { fileId: p.fileId, fileName: p.fileName };
    },
    b2_copy_file: (p, key) => {
      const source = this.versions.find((v) => v.fileId === p.sourceFileId && v.action === 'upload');
      if (!source) throw new B2Error(400, 'bad_request', `Source file not present: ${String(p.sourceFileId)}`);
      // writeFiles (b2_copy_file); the source must also be within the key's bucket and name restrictions.
      this.allow(key, 'writeFiles', source.bucketId, source.fileName);
      const bucket = typeof p.destinationBucketId === 'string' ? this.bucketById(p.destinationBucketId) : this.bucketById(source.bucketId);
      const bucketId = bucket.bucketId;
      const fileName = this.validFileName(p.fileName);
      this.allow(key, 'writeFiles', bucketId, fileName);
      const directive = p.metadataDirective ?? 'COPY';
      if (directive !== 'COPY' && directive !== 'REPLACE') throw new B2Error(400, 'bad_request', 'metadataDirective must be COPY or REPLACE');
      if (directive === 'COPY' && (p.contentType !== undefined || p.fileInfo !== undefined))
        throw new B2Error(400, 'bad_request', 'contentType and fileInfo must not be set with COPY');
      const fileInfo = directive === 'REPLACE' ? validFileInfo((p.fileInfo as Record<string, unknown>) ?? {}) : { ...source.fileInfo };
      const contentType = directive === 'REPLACE' ? String(p.contentType ?? 'application/octet-stream') : source.contentType;
      // The new name with the kept (or new) info must fit the limit too.
      this.checkInfoSize(bucket, fileName, fileInfo, contentType);
      let data = source.data;
      if (typeof p.range === 'string') {
        const m = /^bytes=(\d+)-(\d+)$/.exec(p.range);
        if (!m) throw new B2Error(400, 'bad_request', 'Invalid range');
        data = data.subarray(Number(m[1]), Number(m[2]) + 1);
      }
      const copy: FileVersion = {
        fileId: this.nextId('4_z'),
        fileName,
        bucketId,
        action: 'upload',
        contentType,
        contentSha1: data === source.data ? source.contentSha1 : sha1(data),
        fileInfo,
        infoHeaders: directive === 'REPLACE' ? {} : { ...source.infoHeaders },
        uploadTimestamp: Date.now(),
        data,
      };
      this.versions.push(copy);
      return this.fileJson(copy);
    },
    b2_get_download_authorization: (p, key) => {
      const bucket = this.bucketById(p.bucketId);
      if (typeof p.fileNamePrefix !== 'string') throw new B2Error(400, 'bad_request', 'fileNamePrefix is required');
      this.allow(key, 'shareFiles', bucket.bucketId, p.fileNamePrefix);
      const duration = Number(p.validDurationInSeconds);
      if (!Number.isInteger(duration) || duration < 1 || duration > MAX_VALID_DURATION)
        throw new B2Error(400, 'bad_request', `validDurationInSeconds must be 1..${MAX_VALID_DURATION}`);
      const authorizationToken = `3_dl_${randomBytes(18).toString('base64url')}`;
      const contentDisposition = typeof p.b2ContentDisposition === 'string' ? p.b2ContentDisposition : undefined;
      this.downloadAuths.set(authorizationToken, {
        bucketId: bucket.bucketId,
        fileNamePrefix: p.fileNamePrefix,
        expiresAt: Date.now() + duration * 1000,
        contentDisposition,
      });
      return { bucketId: bucket.bucketId, fileNamePrefix: p.fileNamePrefix, authorizationToken };
    },
    b2_start_large_file: (p, key) => {
      const bucket = this.bucketById(p.bucketId);
      const fileName = this.validFileName(p.fileName);
      this.allow(key, 'writeFiles', bucket.bucketId, fileName);
      const contentType = typeof p.contentType === 'string' ? p.contentType : 'b2/x-auto';
      const fileInfo = validFileInfo((p.fileInfo as Record<string, unknown> | undefined) ?? {});
      this.checkInfoSize(bucket, fileName, fileInfo, contentType);
      const version: FileVersion = {
        fileId: this.nextId('4_z'),
        fileName,
        bucketId: bucket.bucketId,
        action: 'start',
        contentType: contentType === 'b2/x-auto' ? 'application/octet-stream' : contentType,
        contentSha1: 'none',
        fileInfo,
        infoHeaders: {},
        uploadTimestamp: Date.now(),
        data: Buffer.alloc(0),
      };
      this.unfinished.set(version.fileId, { version, parts: new Map() });
      return this.fileJson(version);
    },
    b2_get_upload_part_url: (p, key) => {
      this.versionForKey(key, 'writeFiles', p.fileId);
      const large = this.unfinished.get(String(p.fileId));
      if (!large) throw new B2Error(400, 'bad_request', `No unfinished large file ${String(p.fileId)}`);
      return {
        fileId: p.fileId,
        ...this.issueUploadToken(`${API_PREFIX}b2_upload_part/${String(p.fileId)}/${this.nextId('0037')}`, key, { fileId: String(p.fileId) }),
      };
    },
    b2_finish_large_file: (p, key) => {
      this.versionForKey(key, 'writeFiles', p.fileId);
      const large = this.unfinished.get(String(p.fileId));
      if (!large) throw new B2Error(400, 'bad_request', `No unfinished large file ${String(p.fileId)}`);
      const shas = p.partSha1Array;
      if (!Array.isArray(shas) || shas.length < 2) throw new B2Error(400, 'bad_request', 'A large file needs at least 2 parts');
      if (large.parts.size !== shas.length) throw new B2Error(400, 'bad_request', `Part numbers 1..${shas.length} expected, ${large.parts.size} uploaded`);
      const datas: Buffer[] = [];
      shas.forEach((s, i) => {
        const part = large.parts.get(i + 1);
        if (!part) throw new B2Error(400, 'bad_request', `Part ${i + 1} is missing`);
        if (part.sha1 !== String(s).toLowerCase()) throw new B2Error(400, 'bad_request', `Part ${i + 1} SHA-1 does not match partSha1Array`);
        if (i < shas.length - 1 && part.data.length < this.absoluteMinimumPartSize)
          throw new B2Error(400, 'bad_request', `Part ${i + 1} is smaller than the minimum part size ${this.absoluteMinimumPartSize}`);
        datas.push(part.data);
      });
      this.unfinished.delete(large.version.fileId);
      const version: FileVersion = { ...large.version, action: 'upload', contentSha1: 'none', data: Buffer.concat(datas), uploadTimestamp: Date.now() };
      this.versions.push(version);
      return this.fileJson(version);
    },
    b2_cancel_large_file: (p, key) => {
      this.versionForKey(key, 'writeFiles', p.fileId);
      const large = this.unfinished.get(String(p.fileId));
      if (!large) throw new B2Error(400, 'bad_request', `No unfinished large file ${String(p.fileId)}`);
      this.unfinished.delete(large.version.fileId);
      return { fileId: large.version.fileId, accountId: this.accountId, bucketId: large.version.bucketId, fileName: large.version.fileName };
    },
    b2_list_unfinished_large_files: (p, key) => {
      const bucket = this.bucketById(p.bucketId);
      const prefix = typeof p.namePrefix === 'string' ? p.namePrefix : '';
      this.allow(key, 'listFiles', bucket.bucketId, prefix);
      const max = this.maxCount(p.maxFileCount, 100);
      const all = [...this.unfinished.values()].map((l) => l.version).filter((v) => v.bucketId === bucket.bucketId && v.fileName.startsWith(prefix));
      const from =
        typeof p.startFileId === 'string'
          ? Math.max(
              0,
              all.findIndex((v) => v.fileId === p.startFileId),
            )
          : 0;
      const page = all.slice(from, from + max);
      return { files: page.map((v) => this.fileJson(v)), nextFileId: all[from + max]?.fileId ?? null };
    },
  };

  private maxCount(value: unknown, max = 10_000): number {
    if (value === undefined || value === null) return 100;
    const n = Number(value);
    if (!Number.isInteger(n) || n < 1 || n > max) throw new B2Error(400, 'bad_request', `maxFileCount must be 1..${max}`);
    return n;
  }
}

/** B2 sorts names by their UTF-8 bytes. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

export async function startFakeB2(options: FakeB2Options = {}): Promise<FakeB2Server> {
  return new FakeB2Server(options).start();
}

// Run standalone (for the benchmark, in its own process): prints one JSON line with the URL and keys.
if (process.argv[1] && /b2-server\.[cm]?[jt]s$/.test(process.argv[1]) && process.argv.includes('--serve')) {
  const partArg = process.argv.find((a) => a.startsWith('--min-part='));
  const server = await startFakeB2({
    buckets: { 'bench-bucket': 'allPrivate' },
    absoluteMinimumPartSize: partArg ? Number(partArg.split('=')[1]) : undefined,
    recommendedPartSize: 100_000_000,
  });
  process.stdout.write(
    `${JSON.stringify({ url: server.url, authorizeUrl: server.authorizeUrl, authorizeUrlV2: server.authorizeUrlFor('v2'), applicationKeyId: server.applicationKeyId, applicationKey: server.applicationKey })}\n`,
  );
  process.on('message', (msg) => {
    if (msg === 'stats')
      process.send?.({
        unfinished: server.unfinishedLargeFiles().length,
        versions: server.versions.map((v) => ({ fileName: v.fileName, size: v.data.length, action: v.action })),
        calls: Object.fromEntries(server.calls),
      });
  });
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}
