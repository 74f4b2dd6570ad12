/**
 * The parts of the official `cloudinary` SDK (v2) this backend uses, its lazy loader, and the
 * per-instance client around it.
 *
 * The SDK's `cloudinary.config()` is process-wide, so this backend never calls it: every SDK call
 * gets this instance's cloud name, key, secret and API prefix as per-call options
 * ({@link CloudinaryClient.callOptions}), and two instances on different accounts never see each
 * other's settings.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';
import https from 'node:https';
import type { Writable } from 'node:stream';
import { MediaStorageError } from '../core/errors.js';
import { lazyPeer } from '../core/peer.js';
import type { ResolvedConfig } from './config.js';
import { CloudinaryApiError, fromSdkRejection, retryHintOf } from './errors.js';

/** The parts of the SDK this backend uses (typed loosely: the SDK's own types lag its behaviour). */
export interface CloudinarySdk {
  config(): Record<string, unknown>;
  uploader: {
    upload_stream(options: Record<string, unknown>, callback: (error: unknown, result?: UploadResult) => void): NodeJS.WritableStream & Writable;
    explicit(publicId: string, options: Record<string, unknown>): Promise<AdminResource>;
    destroy(publicId: string, options: Record<string, unknown>): Promise<{ result?: string }>;
  };
  api: {
    resource(publicId: string, options: Record<string, unknown>): Promise<AdminResource & RateLimitInfo>;
    resources(options: Record<string, unknown>): Promise<{ resources: AdminResource[]; next_cursor?: string } & RateLimitInfo>;
    config(options: Record<string, unknown>): Promise<{ settings?: { folder_mode?: string } } & RateLimitInfo>;
  };
  utils: {
    url(publicId: string, options: Record<string, unknown>): string;
    private_download_url(publicId: string, format: string | undefined, options: Record<string, unknown>): string;
    sign_request(params: Record<string, unknown>, options: Record<string, unknown>): Record<string, unknown>;
  };
}

/** The Upload API's answer to an upload (or to one chunk of a chunked upload). */
export interface UploadResult {
  public_id: string;
  version?: number;
  format?: string;
  resource_type?: string;
  type?: string;
  bytes: number;
  etag?: string;
  created_at?: string;
  existing?: boolean;
  done?: boolean;
}

/** An asset as the Upload API's explicit and the Admin API describe it. */
export interface AdminResource {
  public_id: string;
  format?: string;
  resource_type: string;
  type?: string;
  version?: number;
  bytes: number;
  created_at?: string;
  etag?: string;
}

export interface RateLimitInfo {
  rate_limit_reset_at?: Date;
}

/** Loads the SDK on first use, so importing this module costs nothing and a missing package is a clear CONFIG error. */
export const loadSdk: () => Promise<CloudinarySdk> = lazyPeer(
  async () => {
    const mod = (await import('cloudinary')) as unknown as { v2?: CloudinarySdk; default?: { v2?: CloudinarySdk } };
    const v2 = mod.v2 ?? mod.default?.v2;
    if (!v2) throw new MediaStorageError('CONFIG', 'the installed cloudinary package has no v2 API: npm install cloudinary@2', { backend: 'cloudinary' });
    return v2;
  },
  { packages: 'cloudinary', usedBy: 'media-storage/cloudinary (CloudinaryStorage)', backend: 'cloudinary' },
);

/** The response heads of the requests one SDK call made (the SDK keeps none of an error answer's headers). */
interface CallResponses {
  last?: { status: number | undefined; headers: http.IncomingHttpHeaders };
}

/** The call each request belongs to: requests are made inside {@link CloudinaryClient.call}. */
const currentCall = new AsyncLocalStorage<CallResponses>();

/**
 * Makes the agent note each response's head in the SDK call that sent it, so a failure can carry
 * the answer's retry hint (Retry-After, X-FeatureRateLimit-Reset). The agent's other behaviour is
 * untouched: requests still go through its own `addRequest`.
 */
function noteResponses<A extends http.Agent>(agent: A): A {
  const addRequest = (agent as unknown as { addRequest(req: http.ClientRequest, options: unknown): void }).addRequest;
  const noting = Object.create(agent) as A & { addRequest(req: http.ClientRequest, options: unknown): void };
  noting.addRequest = (req, options) => {
    const call = currentCall.getStore();
    if (call) req.once('response', (res: http.IncomingMessage) => (call.last = { status: res.statusCode, headers: res.headers }));
    addRequest.call(agent, req, options);
  };
  return noting;
}

/** One storage's account settings, agents and rate-limit state, applied to every SDK call it makes. */
export class CloudinaryClient {
  private readonly apiAgent: http.Agent;
  /** The API agent as the SDK is given it (noting responses). */
  private readonly sdkAgent: http.Agent;
  /** Whether the agent is ours to close (none was passed in). */
  readonly ownsAgent: boolean;
  private sdkProxy: boolean | undefined;
  /** The Admin API's reset time, as last reported on a successful call. */
  lastRateLimitReset: Date | undefined;

  constructor(
    readonly config: ResolvedConfig,
    readonly deliveryType: 'upload' | 'authenticated',
    /** Per-request timeout in milliseconds. */
    readonly timeout: number,
    agent: http.Agent | undefined,
  ) {
    this.ownsAgent = !agent;
    // Passing an agent of the prefix's protocol makes the SDK's requests work whichever of
    // http/https it picked when it was first loaded (it decides once, from the global config).
    this.apiAgent = agent ?? this.newAgent(true);
    this.sdkAgent = noteResponses(this.apiAgent);
  }

  /** Closes the keep-alive connections this client opened. */
  close(): void {
    if (this.ownsAgent) this.apiAgent.destroy();
  }

  /** The agent to hand the SDK for a request: `agent`, noting its responses for {@link call}. */
  forSdk(agent: http.Agent): http.Agent {
    return noteResponses(agent);
  }

  /**
   * An agent for API calls whose sockets are destroyed after `timeout` ms without a byte either
   * way. The SDK sets that timeout on Admin API requests but never acts on it, so a stalled
   * answer would hang the call forever; a destroyed socket fails it (UNAVAILABLE) instead.
   */
  newAgent(keepAlive: boolean): http.Agent {
    // `timeout` also lets the agent honour a server's Keep-Alive hint (it drops an idle socket a
    // second before the server would), instead of reusing one the server is closing (ECONNRESET).
    const agentOptions = { keepAlive, timeout: this.timeout };
    const agent = this.config.uploadPrefix.startsWith('http:') ? new http.Agent(agentOptions) : new https.Agent(agentOptions);
    const createConnection = agent.createConnection.bind(agent) as (...args: unknown[]) => import('node:net').Socket;
    agent.createConnection = ((...args: unknown[]) => {
      const socket = createConnection(...args);
      socket.setTimeout(this.timeout, () => socket.destroy());
      return socket;
    }) as typeof agent.createConnection;
    return agent;
  }

  /**
   * Whether the SDK was configured with a proxy (CLOUDINARY_API_PROXY / api_proxy): it then builds
   * its own proxy agent, and ignoring it for ours would bypass the proxy.
   */
  sdkUsesProxy(sdk: CloudinarySdk): boolean {
    this.sdkProxy ??= Boolean(sdk.config().api_proxy);
    return this.sdkProxy && this.ownsAgent;
  }

  /** The per-call options that stand in for the SDK's global config. */
  callOptions(extra: Record<string, unknown> = {}): Record<string, unknown> {
    const c = this.config;
    return {
      cloud_name: c.cloudName,
      api_key: c.apiKey,
      api_secret: c.apiSecret,
      upload_prefix: c.uploadPrefix,
      signature_algorithm: c.signatureAlgorithm,
      timeout: this.timeout,
      ...(this.sdkProxy && this.ownsAgent ? {} : { agent: this.sdkAgent }),
      ...extra,
    };
  }

  /**
   * Runs an SDK call, its rejection normalised (and stripped of credentials) by
   * {@link fromSdkRejection}, with the retry hint of the answer that failed it.
   */
  async call<T>(fn: (sdk: CloudinarySdk) => Promise<T>): Promise<T> {
    const sdk = await loadSdk();
    this.sdkUsesProxy(sdk);
    const responses: CallResponses = {};
    try {
      return await currentCall.run(responses, () => fn(sdk));
    } catch (err) {
      const failure = fromSdkRejection(err);
      if (failure instanceof CloudinaryApiError && responses.last && failure.retryAfter === undefined) {
        failure.retryAfter = retryHintOf(failure.httpCode, responses.last.headers);
      }
      throw failure;
    }
  }

  /** Keeps the Admin API's reset time from a successful answer, for the retry hint of a later rate limit. */
  noteRateLimit(result: RateLimitInfo): void {
    if (result.rate_limit_reset_at instanceof Date) this.lastRateLimitReset = result.rate_limit_reset_at;
  }
}
