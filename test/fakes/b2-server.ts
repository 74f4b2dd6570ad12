/**
 * A fake Backblaze B2 (native API, v2 call shapes), written from Backblaze's API reference, for
 * tests and benchmarks. It checks what arrives the way B2 does: Basic auth on authorize, account
 * tokens on every API call, upload tokens bound to their upload URL, the SHA-1 of every upload and
 * part (including `hex_digits_at_end`), Content-Length (no chunked uploads), the minimum part size
 * and the partSha1Array at finish. Errors are B2's JSON bodies `{ status, code, message }`.
 *
 * Fault controls (`faults`): expire every token, fail the Nth matching call with a status, or cut
 * the connection after N bytes of a request or response body.
 */
import { createHash, randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeB2Options {
  applicationKeyId?: string;
  applicationKey?: string;
  /** Buckets to create: name → type. Default one private bucket `media-bucket`. */
  buckets?: Record<string, 'allPublic' | 'allPrivate'>;
  /** Sizes announced by authorize; B2 announces 100 MB and 5 MB. */
  recommendedPartSize?: number;
  absoluteMinimumPartSize?: number;
  /** Restrict the key to one bucket (authorize then names it in `allowed`). */
  restrictToBucket?: string;
}

export interface FileVersion {
  fileId: string;
  fileName: string;
  bucketId: string;
  action: 'upload' | 'hide' | 'start';
  contentType: string;
  contentSha1: string;
  fileInfo: Record<string, string>;
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
  bucketType: 'allPublic' | 'allPrivate';
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
  /** Cut the connection after this many body bytes (request body for uploads, response body for downloads). */
  cutAfterBytes?: number;
}

type HostRole = 'auth' | 'api' | 'content';

class B2Error extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

const API_PREFIX = '/b2api/v2/';
const MAX_VALID_DURATION = 604_800;

function sha1(data: Buffer): string {
  return createHash('sha1').update(data).digest('hex');
}

/** X-Bz-File-Name and X-Bz-Info-* values are percent-encoded UTF-8; B2 also takes "+" for a space. */
function decodeHeaderValue(value: string): string {
  return decodeURIComponent(value.replace(/\+/g, ' '));
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
  private readonly accountTokens = new Map<string, { expired: boolean }>();
  private readonly uploadTokens = new Map<string, { urlPath: string; expired: boolean; bucketId?: string; fileId?: string }>();
  private readonly downloadAuths = new Map<string, DownloadAuth>();
  private readonly faults: Fault[] = [];
  private readonly restrictToBucket?: string;
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
  private readonly uploadsInFlight = new Set<string>();

  constructor(options: FakeB2Options = {}) {
    super();
    this.applicationKeyId = options.applicationKeyId ?? `key${randomBytes(6).toString('hex')}`;
    this.applicationKey = options.applicationKey ?? `K${randomBytes(15).toString('base64url')}`;
    this.recommendedPartSize = options.recommendedPartSize ?? 100_000_000;
    this.absoluteMinimumPartSize = options.absoluteMinimumPartSize ?? 5_000_000;
    this.restrictToBucket = options.restrictToBucket;
    for (const [name, type] of Object.entries(options.buckets ?? { 'media-bucket': 'allPrivate' as const })) {
      const bucketId = randomBytes(12).toString('hex');
      this.buckets.set(name, { bucketId, bucketName: name, bucketType: type });
    }
  }

  /** The URL to pass as the authorize endpoint (what a proxy in front of api.backblazeb2.com would be). */
  get authorizeUrl(): string {
    return `${this.authUrl}${API_PREFIX}b2_authorize_account`;
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

  /** Fails calls of `api` with `status`: the `nth` call from now (1 = the next), then `times - 1` more. */
  failCall(api: string, options: { nth?: number; status?: number; code?: string; times?: number } = {}): void {
    this.faults.push({ api, skip: (options.nth ?? 1) - 1, times: options.times ?? 1, status: options.status ?? 503, code: options.code });
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

  private sendJson(res: http.ServerResponse, status: number, body: unknown): void {
    const data = Buffer.from(JSON.stringify(body));
    res.writeHead(status, { 'Content-Type': 'application/json;charset=utf-8', 'Content-Length': data.length, 'Cache-Control': 'max-age=0, no-cache, no-store' });
    res.end(data);
  }

  private sendError(res: http.ServerResponse, err: B2Error): void {
    this.sendJson(res, err.status, { status: err.status, code: err.code, message: err.message });
  }

  private checkAccountToken(req: http.IncomingMessage): void {
    const token = req.headers.authorization;
    if (!token) throw new B2Error(401, 'bad_auth_token', 'Missing Authorization header');
    const entry = this.accountTokens.get(token);
    if (!entry) throw new B2Error(401, 'bad_auth_token', 'Invalid authorization token');
    if (entry.expired) throw new B2Error(401, 'expired_auth_token', 'Authorization token has expired');
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

  private fileInfoFromHeaders(req: http.IncomingMessage): Record<string, string> {
    const info: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (name.startsWith('x-bz-info-') && typeof value === 'string') info[name.slice('x-bz-info-'.length)] = decodeHeaderValue(value);
    }
    if (Object.keys(info).length > 10) throw new B2Error(400, 'bad_request', 'Too many file info headers (max 10)');
    return info;
  }

  private validFileName(name: unknown): string {
    if (typeof name !== 'string' || name.length === 0) throw new B2Error(400, 'bad_request', 'fileName is required');
    if (Buffer.byteLength(name) > 1024) throw new B2Error(400, 'bad_request', 'File names must be at most 1024 bytes');
    // eslint-disable-next-line no-control-regex
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
      expected = body.subarray(body.length - 40).toString('latin1').toLowerCase();
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
    let api: string;
    if (path.startsWith('/file/')) api = req.method === 'HEAD' ? 'download_head' : 'download';
    else if (path.startsWith(`${API_PREFIX}b2_upload_file/`)) api = 'b2_upload_file';
    else if (path.startsWith(`${API_PREFIX}b2_upload_part/`)) api = 'b2_upload_part';
    else if (path.startsWith(API_PREFIX)) api = path.slice(API_PREFIX.length);
    else api = 'unknown';
    this.calls.set(api, (this.calls.get(api) ?? 0) + 1);
    this.emit('call', api);
    const fault = this.takeFault(api);
    try {
      const served = api === 'b2_authorize_account' ? 'auth' : api === 'download' || api === 'download_head' || api === 'b2_upload_file' || api === 'b2_upload_part' ? 'content' : 'api';
      if (served !== role) {
        req.resume();
        throw new B2Error(404, 'not_found', `${api} is not served on this host (${role}); use the URLs from b2_authorize_account`);
      }
      if (fault?.status !== undefined) {
        req.resume();
        throw new B2Error(fault.status, fault.code ?? (fault.status === 503 ? 'service_unavailable' : fault.status === 408 ? 'request_timeout' : 'internal_error'), 'Injected fault');
      }
      if (api === 'download' || api === 'download_head') return await this.download(req, res, url, fault);
      if (api === 'b2_upload_file') return await this.uploadFile(req, res, path, fault);
      if (api === 'b2_upload_part') return await this.uploadPart(req, res, path, fault);
      if (api === 'b2_authorize_account') return this.authorize(req, res);
      if (req.method !== 'POST' && req.method !== 'GET') throw new B2Error(405, 'method_not_allowed', `${req.method} not allowed`);
      const raw = req.method === 'POST' ? await readBody(req) : Buffer.alloc(0);
      let params: Record<string, unknown>;
      try {
        params = req.method === 'POST' ? (raw.length ? JSON.parse(raw.toString('utf8')) : {}) : Object.fromEntries(url.searchParams);
      } catch {
        throw new B2Error(400, 'bad_json', 'Request body is not valid JSON');
      }
      this.checkAccountToken(req);
      const handler = this.apiHandlers[api];
      if (!handler) throw new B2Error(404, 'not_found', `Unknown API ${api}`);
      this.sendJson(res, 200, handler(params));
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

  private authorize(req: http.IncomingMessage, res: http.ServerResponse): void {
    req.resume();
    const header = req.headers.authorization ?? '';
    const match = /^Basic (.+)$/.exec(header);
    const [id, key] = match ? Buffer.from(match[1]!, 'base64').toString('utf8').split(/:(.*)/s) : [];
    if (id !== this.applicationKeyId || key !== this.applicationKey) throw new B2Error(401, 'unauthorized', 'Invalid applicationKeyId or applicationKey');
    const token = `4_${randomBytes(24).toString('base64url')}`;
    this.accountTokens.set(token, { expired: false });
    const restricted = this.restrictToBucket ? this.bucket(this.restrictToBucket) : undefined;
    this.sendJson(res, 200, {
      accountId: this.accountId,
      authorizationToken: token,
      allowed: {
        capabilities: ['listBuckets', 'listFiles', 'readFiles', 'shareFiles', 'writeFiles', 'deleteFiles'],
        bucketId: restricted?.bucketId ?? null,
        bucketName: restricted?.bucketName ?? null,
        namePrefix: null,
      },
      apiUrl: this.advertised.apiUrl ?? this.url,
      downloadUrl: this.advertised.downloadUrl ?? this.downloadUrl,
      recommendedPartSize: this.recommendedPartSize,
      absoluteMinimumPartSize: this.absoluteMinimumPartSize,
      s3ApiUrl: this.url,
    });
  }

  private issueUploadToken(urlPath: string, extra: { bucketId?: string; fileId?: string }): { uploadUrl: string; authorizationToken: string } {
    const authorizationToken = `4_upload_${randomBytes(18).toString('base64url')}`;
    this.uploadTokens.set(authorizationToken, { urlPath, expired: false, ...extra });
    return { uploadUrl: `${this.advertised.downloadUrl ?? this.downloadUrl}${urlPath}`, authorizationToken };
  }

  private checkUploadToken(req: http.IncomingMessage, path: string): { bucketId?: string; fileId?: string } {
    const token = req.headers.authorization;
    const entry = token ? this.uploadTokens.get(token) : undefined;
    if (!entry || entry.urlPath !== path) throw new B2Error(401, 'bad_auth_token', 'Invalid upload authorization token for this URL');
    if (entry.expired) throw new B2Error(401, 'expired_auth_token', 'Upload authorization token has expired');
    return entry;
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
    const { bucketId } = this.checkUploadToken(req, path);
    if (this.uploadsInFlight.has(path)) this.sharedUploadUrlUses++;
    this.uploadsInFlight.add(path);
    req.once('close', () => this.uploadsInFlight.delete(path));
    const fileName = this.validFileName(decodeHeaderValue(String(req.headers['x-bz-file-name'] ?? '')));
    const fileInfo = this.fileInfoFromHeaders(req);
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
    if (this.uploadsInFlight.has(path)) this.sharedUploadUrlUses++;
    this.uploadsInFlight.add(path);
    req.once('close', () => this.uploadsInFlight.delete(path));
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
        authorized = true;
      } else if (share) {
        if (share.expiresAt < Date.now()) throw new B2Error(401, 'expired_auth_token', 'Download authorization has expired');
        if (share.bucketId !== bucket.bucketId || !fileName.startsWith(share.fileNamePrefix)) throw new B2Error(401, 'unauthorized', 'Download authorization does not cover this file');
        if (share.contentDisposition !== undefined && share.contentDisposition !== dispositionParam) throw new B2Error(401, 'unauthorized', 'b2ContentDisposition does not match the authorization');
        authorized = true;
      } else {
        throw new B2Error(401, 'bad_auth_token', 'Invalid authorization token');
      }
    }
    if (!authorized) throw new B2Error(401, 'unauthorized', bucket.bucketType === 'allPublic' ? 'b2ContentDisposition requires an authorization token' : 'Bucket is private; an authorization token is required');
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
    for (const [k, v] of Object.entries(version.fileInfo)) {
      if (k === 'b2-cache-control') headers['Cache-Control'] = v;
      else if (k === 'b2-content-disposition') headers['Content-Disposition'] = v;
      else if (!k.startsWith('b2-')) headers[`X-Bz-Info-${k}`] = encodeURIComponent(v);
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

  private readonly apiHandlers: Record<string, (p: Record<string, unknown>) => unknown> = {
    b2_list_buckets: (p) => {
      if (p.accountId !== this.accountId) throw new B2Error(400, 'bad_request', 'accountId does not match');
      const list = [...this.buckets.values()].filter((b) => (!p.bucketName || b.bucketName === p.bucketName) && (!p.bucketId || b.bucketId === p.bucketId));
      return { buckets: list.map((b) => ({ accountId: this.accountId, ...b, bucketInfo: {}, corsRules: [], lifecycleRules: [], revision: 1, options: [] })) };
    },
    b2_get_upload_url: (p) => {
      const bucket = this.bucketById(p.bucketId);
      return { bucketId: bucket.bucketId, ...this.issueUploadToken(`${API_PREFIX}b2_upload_file/${bucket.bucketId}/${this.nextId('c001_v')}`, { bucketId: bucket.bucketId }) };
    },
    b2_list_file_names: (p) => {
      const bucket = this.bucketById(p.bucketId);
      const max = this.maxCount(p.maxFileCount);
      const prefix = typeof p.prefix === 'string' ? p.prefix : '';
      const start = typeof p.startFileName === 'string' ? p.startFileName : '';
      const names = new Map<string, FileVersion>();
      for (const v of this.versions) if (v.bucketId === bucket.bucketId) names.set(v.fileName, v);
      // Only names whose latest version is an upload: hidden files are not listed.
      const sorted = [...names.values()].filter((v) => v.action === 'upload' && v.fileName.startsWith(prefix) && v.fileName >= start).sort((a, b) => compareNames(a.fileName, b.fileName));
      const page = sorted.slice(0, max);
      return { files: page.map((v) => this.fileJson(v)), nextFileName: sorted.length > max ? sorted[max]!.fileName : null };
    },
    b2_list_file_versions: (p) => {
      const bucket = this.bucketById(p.bucketId);
      const max = this.maxCount(p.maxFileCount);
      const prefix = typeof p.prefix === 'string' ? p.prefix : '';
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
    b2_get_file_info: (p) => {
      const v = this.versions.find((x) => x.fileId === p.fileId) ?? this.unfinished.get(String(p.fileId))?.version;
      if (!v) throw new B2Error(404, 'not_found', `File not present: ${String(p.fileId)}`);
      return this.fileJson(v);
    },
    b2_hide_file: (p) => {
      const bucket = this.bucketById(p.bucketId);
      const fileName = this.validFileName(p.fileName);
      const latest = this.latestVersion(bucket.bucketId, fileName);
      if (!latest) throw new B2Error(404, 'no_such_file', `File not present: ${fileName}`);
      if (latest.action === 'hide') throw new B2Error(400, 'already_hidden', `File already hidden: ${fileName}`);
      const marker: FileVersion = { fileId: this.nextId('4_z'), fileName, bucketId: bucket.bucketId, action: 'hide', contentType: 'application/x-bz-hide-marker', contentSha1: '', fileInfo: {}, uploadTimestamp: Date.now(), data: Buffer.alloc(0) };
      this.versions.push(marker);
      return this.fileJson(marker);
    },
    b2_delete_file_version: (p) => {
      const i = this.versions.findIndex((v) => v.fileId === p.fileId);
      if (i < 0 || this.versions[i]!.fileName !== p.fileName) {
        if (this.unfinished.has(String(p.fileId))) throw new B2Error(400, 'bad_request', 'Unfinished large files must be cancelled with b2_cancel_large_file');
        throw new B2Error(400, 'file_not_present', `File not present: ${String(p.fileName)} ${String(p.fileId)}`);
      }
      this.versions.splice(i, 1);
      return { fileId: p.fileId, fileName: p.fileName };
    },
    b2_copy_file: (p) => {
      const source = this.versions.find((v) => v.fileId === p.sourceFileId && v.action === 'upload');
      if (!source) throw new B2Error(400, 'bad_request', `Source file not present: ${String(p.sourceFileId)}`);
      const bucketId = typeof p.destinationBucketId === 'string' ? this.bucketById(p.destinationBucketId).bucketId : source.bucketId;
      const fileName = this.validFileName(p.fileName);
      const directive = p.metadataDirective ?? 'COPY';
      if (directive !== 'COPY' && directive !== 'REPLACE') throw new B2Error(400, 'bad_request', 'metadataDirective must be COPY or REPLACE');
      if (directive === 'COPY' && (p.contentType !== undefined || p.fileInfo !== undefined)) throw new B2Error(400, 'bad_request', 'contentType and fileInfo must not be set with COPY');
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
        contentType: directive === 'REPLACE' ? String(p.contentType ?? 'application/octet-stream') : source.contentType,
        contentSha1: data === source.data ? source.contentSha1 : sha1(data),
        fileInfo: directive === 'REPLACE' ? { ...((p.fileInfo as Record<string, string>) ?? {}) } : { ...source.fileInfo },
        uploadTimestamp: Date.now(),
        data,
      };
      this.versions.push(copy);
      return this.fileJson(copy);
    },
    b2_get_download_authorization: (p) => {
      const bucket = this.bucketById(p.bucketId);
      if (typeof p.fileNamePrefix !== 'string') throw new B2Error(400, 'bad_request', 'fileNamePrefix is required');
      const duration = Number(p.validDurationInSeconds);
      if (!Number.isInteger(duration) || duration < 1 || duration > MAX_VALID_DURATION) throw new B2Error(400, 'bad_request', `validDurationInSeconds must be 1..${MAX_VALID_DURATION}`);
      const authorizationToken = `3_dl_${randomBytes(18).toString('base64url')}`;
      const contentDisposition = typeof p.b2ContentDisposition === 'string' ? p.b2ContentDisposition : undefined;
      this.downloadAuths.set(authorizationToken, { bucketId: bucket.bucketId, fileNamePrefix: p.fileNamePrefix, expiresAt: Date.now() + duration * 1000, contentDisposition });
      return { bucketId: bucket.bucketId, fileNamePrefix: p.fileNamePrefix, authorizationToken };
    },
    b2_start_large_file: (p) => {
      const bucket = this.bucketById(p.bucketId);
      const fileName = this.validFileName(p.fileName);
      const contentType = typeof p.contentType === 'string' ? p.contentType : 'b2/x-auto';
      const fileInfo = (p.fileInfo as Record<string, string> | undefined) ?? {};
      if (Object.keys(fileInfo).length > 10) throw new B2Error(400, 'bad_request', 'Too many file info entries (max 10)');
      const version: FileVersion = { fileId: this.nextId('4_z'), fileName, bucketId: bucket.bucketId, action: 'start', contentType: contentType === 'b2/x-auto' ? 'application/octet-stream' : contentType, contentSha1: 'none', fileInfo: { ...fileInfo }, uploadTimestamp: Date.now(), data: Buffer.alloc(0) };
      this.unfinished.set(version.fileId, { version, parts: new Map() });
      return this.fileJson(version);
    },
    b2_get_upload_part_url: (p) => {
      const large = this.unfinished.get(String(p.fileId));
      if (!large) throw new B2Error(400, 'bad_request', `No unfinished large file ${String(p.fileId)}`);
      return { fileId: p.fileId, ...this.issueUploadToken(`${API_PREFIX}b2_upload_part/${String(p.fileId)}/${this.nextId('0037')}`, { fileId: String(p.fileId) }) };
    },
    b2_finish_large_file: (p) => {
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
        if (i < shas.length - 1 && part.data.length < this.absoluteMinimumPartSize) throw new B2Error(400, 'bad_request', `Part ${i + 1} is smaller than the minimum part size ${this.absoluteMinimumPartSize}`);
        datas.push(part.data);
      });
      this.unfinished.delete(large.version.fileId);
      const version: FileVersion = { ...large.version, action: 'upload', contentSha1: 'none', data: Buffer.concat(datas), uploadTimestamp: Date.now() };
      this.versions.push(version);
      return this.fileJson(version);
    },
    b2_cancel_large_file: (p) => {
      const large = this.unfinished.get(String(p.fileId));
      if (!large) throw new B2Error(400, 'bad_request', `No unfinished large file ${String(p.fileId)}`);
      this.unfinished.delete(large.version.fileId);
      return { fileId: large.version.fileId, accountId: this.accountId, bucketId: large.version.bucketId, fileName: large.version.fileName };
    },
    b2_list_unfinished_large_files: (p) => {
      const bucket = this.bucketById(p.bucketId);
      const prefix = typeof p.namePrefix === 'string' ? p.namePrefix : '';
      const max = this.maxCount(p.maxFileCount, 100);
      const all = [...this.unfinished.values()].map((l) => l.version).filter((v) => v.bucketId === bucket.bucketId && v.fileName.startsWith(prefix));
      const from = typeof p.startFileId === 'string' ? Math.max(0, all.findIndex((v) => v.fileId === p.startFileId)) : 0;
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
  const server = await startFakeB2({ buckets: { 'bench-bucket': 'allPrivate' }, absoluteMinimumPartSize: partArg ? Number(partArg.split('=')[1]) : undefined, recommendedPartSize: 100_000_000 });
  process.stdout.write(`${JSON.stringify({ url: server.url, authorizeUrl: server.authorizeUrl, applicationKeyId: server.applicationKeyId, applicationKey: server.applicationKey })}\n`);
  process.on('message', (msg) => {
    if (msg === 'stats') process.send?.({ unfinished: server.unfinishedLargeFiles().length, versions: server.versions.map((v) => ({ fileName: v.fileName, size: v.data.length, action: v.action })), calls: Object.fromEntries(server.calls) });
  });
  process.on('SIGTERM', () => void server.close().then(() => process.exit(0)));
}
