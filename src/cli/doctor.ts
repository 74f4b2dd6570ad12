import { randomBytes } from 'node:crypto';
import { configFromEnv, createMediaStorage, describeConfig, describeEnvTypo, findEnvTypos, parseStorageUrl, type StorageConfig } from '../config/index.js';
import { backendDefinition } from '../core/definition.js';
import { detectEphemeralPlatform, durableStorageHint, isEphemeralProduction } from '../core/ephemeral.js';
import { MediaStorageError, isMediaStorageError, redact } from '../core/errors.js';
import type { MediaStorage } from '../core/types.js';

export type CheckLevel = 'ok' | 'warn' | 'fail' | 'info';

/** One finding of {@link runDoctor}, as the CLI prints it on one line. */
export interface DoctorCheck {
  /** What was checked: `configuration`, `environment`, `durability`, `write`, `read`, `url`, `cors` or `delete`. */
  name: string;
  /** `fail` makes the report unhealthy; `warn` and `info` do not. */
  level: CheckLevel;
  /** What was found, and for a problem what to do about it. */
  detail: string;
}

/** What {@link runDoctor} found: the storage checked and every check, in order. */
export interface DoctorReport {
  /** The storage's backend name; absent when the configuration could not be used. */
  backend?: string;
  /** The configuration in effect, secrets masked (`describeConfig`); absent when a storage was given. */
  settings?: Record<string, unknown>;
  checks: DoctorCheck[];
  /** True when no check failed. */
  healthy: boolean;
}

/** Options of {@link runDoctor}: which storage to check (a URL, the environment, or a storage), and how its probes run. */
export interface DoctorOptions {
  /** A storage URL; default: the environment's configuration. */
  url?: string;
  /** The environment read for the configuration, typo warnings and the platform; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** How URLs are fetched; default the global fetch. */
  fetch?: typeof fetch;
  /** Origin sent in the CORS probe; default https://example.com. */
  origin?: string;
  /** Use this storage instead of creating one (for tests and plugins). */
  storage?: MediaStorage;
  /** Called with each check as soon as it is known, so a slow probe does not hide the ones before it. */
  onCheck?: (check: DoctorCheck) => void;
  /** How long each probe (write, read, URL fetch, delete) may take, in ms; default 10,000. */
  timeoutMs?: number;
}

/** The default time one probe may take. */
export const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

/** A probe that got no answer in time. */
class ProbeTimeout extends Error {
  constructor(
    readonly probe: string,
    readonly ms: number,
  ) {
    super(`${probe}: no answer within ${ms / 1000} s`);
  }
}

/**
 * Runs one probe with a deadline: the signal aborts what can be aborted (save, read, fetch), and
 * the deadline rejects either way, so a server that accepts connections and never answers costs
 * seconds, not the SDK's two-minute socket timeout.
 */
async function withDeadline<T>(probe: string, ms: number, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      controller.abort(new ProbeTimeout(probe, ms));
      reject(new ProbeTimeout(probe, ms));
    }, ms);
  });
  try {
    const work = run(controller.signal);
    work.catch(() => undefined);
    return await Promise.race([work, deadline]);
  } finally {
    clearTimeout(timer);
  }
}

/** What a failure means, in plain words, by error code. */
function explain(err: unknown, config: StorageConfig | undefined): string {
  if (err instanceof ProbeTimeout || (isMediaStorageError(err) && err.code === 'ABORTED' && err.cause instanceof ProbeTimeout)) {
    const timeout = err instanceof ProbeTimeout ? err : (err.cause as ProbeTimeout);
    return `No answer within ${timeout.ms / 1000} s: the storage accepts connections but does not respond. Check the endpoint's host and port (is it the storage's API, not another service?) and any proxy or firewall in between.`;
  }
  // Messages of MediaStorageErrors are scrubbed already; anything else is scrubbed here.
  if (!isMediaStorageError(err)) return redact(String(err));
  const e = err as MediaStorageError;
  const credentialsHint = config ? backendDefinition(config.backend)?.credentialsHint : undefined;
  switch (e.code) {
    case 'AUTH':
      return `The credentials were rejected. Check ${credentialsHint ?? 'the credentials'}. (${e.message})`;
    case 'PERMISSION':
      return `The credentials work but are not allowed to do this. Give them read, write and delete on the bucket (for S3: s3:PutObject, s3:GetObject, s3:DeleteObject, s3:ListBucket). (${e.message})`;
    case 'CONFIG':
      return e.message;
    case 'UNAVAILABLE':
      return `The storage could not be reached or failed. Check the endpoint and region, and your network. (${e.message})`;
    default:
      return `${e.code}: ${e.message}`;
  }
}

/**
 * Checks a storage configuration end to end: which backend and settings are in effect (secrets
 * masked), then a write, read, URL fetch (status, Content-Type, CORS) and delete probe, and
 * whether the local disk is being used on an ephemeral platform in production.
 */
export async function runDoctor(options: DoctorOptions = {}): Promise<DoctorReport> {
  const env = options.env ?? process.env;
  const doFetch = options.fetch ?? fetch;
  const timeoutMs = options.timeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS;
  const checks: DoctorCheck[] = [];
  const add = (name: string, level: CheckLevel, detail: string): void => {
    const check = { name, level, detail };
    checks.push(check);
    options.onCheck?.(check);
  };
  const finish = (report: Omit<DoctorReport, 'checks' | 'healthy'>): DoctorReport => ({ ...report, checks, healthy: !checks.some((c) => c.level === 'fail') });

  let config: StorageConfig | undefined;
  let storage = options.storage;
  if (!storage) {
    try {
      config = options.url ? parseStorageUrl(options.url, '--url') : configFromEnv(env, { warn: false });
      storage = await createMediaStorage(config);
    } catch (err) {
      add('configuration', 'fail', explain(err, config));
      return finish({});
    }
  }
  const settings = config ? describeConfig(config) : undefined;
  add('configuration', 'ok', `backend ${storage.name}${settings ? `: ${JSON.stringify(settings)}` : ''}`);
  if (!options.url && !options.storage) {
    // A misspelled variable that left its meant one unset changed what the app runs on.
    for (const typo of findEnvTypos(env)) add('environment', typo.unsetSuggestion ? 'fail' : 'warn', describeEnvTypo(typo));
  }

  if (backendDefinition(storage.name)?.durability === 'local-disk') {
    const production = isEphemeralProduction(env);
    const platform = detectEphemeralPlatform(env);
    if (production) {
      add(
        'durability',
        'fail',
        `LOCAL DISK ON ${production.toUpperCase()} IN PRODUCTION: every deploy or restart wipes it, and uploaded photos vanish while the database still points at them. Set MEDIA_STORAGE_URL (${durableStorageHint()}) to durable storage, then copy existing files with "media-storage sync".`,
      );
    } else if (platform) {
      add('durability', 'warn', `The local disk on ${platform} does not survive a deploy; fine for development, not for production.`);
    } else {
      add('durability', 'info', 'Local disk: durable only if this machine keeps its disk across deploys.');
    }
  }

  const key = `media-storage-doctor/probe-${randomBytes(6).toString('hex')}.txt`;
  const body = `media-storage doctor probe ${new Date().toISOString()}`;
  try {
    await withDeadline('write', timeoutMs, (signal) => storage.save(key, body, { contentType: 'text/plain', signal }));
    add('write', 'ok', `saved ${key}`);
  } catch (err) {
    add('write', 'fail', explain(err, config));
    return finish({ backend: storage.name, settings });
  }
  try {
    const back = (await withDeadline('read', timeoutMs, (signal) => storage.readBuffer(key, { signal }))).toString();
    add('read', back === body ? 'ok' : 'fail', back === body ? 'read back the same bytes' : 'read back different bytes');
  } catch (err) {
    add('read', 'fail', explain(err, config));
  }

  try {
    const wantsSigned = !storage.capabilities.publicUrls;
    const url = await withDeadline('url', timeoutMs, () => storage.url(key, wantsSigned ? { expiresIn: 300 } : {}));
    const shown = url.replace(/\?.*$/, wantsSigned ? '?…(signed)' : '');
    // A fetch that fails says which URL it could not reach (node-fetch: "request to <url> failed"):
    // the signed URL works for minutes, so the failure reports the shown form only.
    const fetchUrl = async (init?: RequestInit): Promise<Response> => {
      try {
        return await withDeadline('url', timeoutMs, async (signal) => {
          const res = await doFetch(url, { ...init, signal });
          // The body is read within the deadline too: a server may send headers and stall.
          const bytes = await res.arrayBuffer().catch(() => undefined);
          return new Response(res.status === 304 || res.status === 204 ? null : bytes, { status: res.status, headers: res.headers });
        });
      } catch (err) {
        if (err instanceof ProbeTimeout) throw err;
        const message = (err instanceof Error ? err.message : String(err)).split(url).join(shown);
        throw new MediaStorageError('UNAVAILABLE', `fetching ${shown} failed: ${message}`, { operation: 'doctor', cause: err }).withSecretsRedacted([url]);
      }
    };
    if (!/^https?:\/\//i.test(url)) {
      add('url', 'info', `URLs are relative (${shown}): your app serves them; mount storage.handler() under that path.`);
    } else {
      const res = await fetchUrl();
      await res.arrayBuffer().catch(() => undefined);
      if (res.status === 200) {
        const type = res.headers.get('content-type') ?? '';
        add(
          'url',
          type.startsWith('text/plain') ? 'ok' : 'warn',
          type.startsWith('text/plain')
            ? `${shown} answers 200 with ${type}`
            : `${shown} answers 200 but with Content-Type "${type}" instead of text/plain: browsers may mis-handle files.`,
        );
      } else if (res.status === 403 && !wantsSigned) {
        add(
          'url',
          'fail',
          `${shown} answers 403: the files are not publicly readable. Allow public reads for the bucket (a bucket policy granting s3:GetObject on the prefix, or public-read ACLs where the store has them), or make the storage private so URLs are signed (AWS_QUERYSTRING_AUTH=true / visibility=private).`,
        );
      } else if (res.status === 403) {
        add('url', 'fail', `a signed URL answers 403: check the region, the endpoint, and the clock of this machine.`);
      } else if (res.status === 404) {
        add(
          'url',
          'fail',
          `${shown} answers 404: the public base URL does not point at the bucket (check AWS_S3_CUSTOM_DOMAIN / publicBaseUrl and the key prefix).`,
        );
      } else {
        add('url', 'fail', `${shown} answers ${res.status}.`);
      }
      const origin = options.origin ?? 'https://example.com';
      const cors = await fetchUrl({ headers: { Origin: origin } });
      await cors.arrayBuffer().catch(() => undefined);
      const allowed = cors.headers.get('access-control-allow-origin');
      if (allowed === '*' || allowed === origin) add('cors', 'ok', `cross-origin reads allowed (${allowed})`);
      else
        add(
          'cors',
          'warn',
          `no CORS header for origin ${origin}. <img> tags still work; browser uploads straight to the bucket and reading images from scripts (canvas, fetch) need a CORS rule allowing GET, PUT and POST from your site's origin.`,
        );
    }
  } catch (err) {
    add('url', 'fail', explain(err, config));
  }

  try {
    await withDeadline('delete', timeoutMs, () => storage.delete(key));
    const still = await withDeadline('delete', timeoutMs, () => storage.exists(key));
    add('delete', still ? 'fail' : 'ok', still ? 'the probe still exists after delete' : 'deleted the probe');
  } catch (err) {
    add('delete', 'fail', explain(err, config));
  }
  return finish({ backend: storage.name, settings });
}

/** One check as the doctor prints it: `FAIL  write         ...`. */
export function formatDoctorCheck(check: DoctorCheck): string {
  const mark: Record<CheckLevel, string> = { ok: 'ok  ', warn: 'WARN', fail: 'FAIL', info: 'info' };
  return `${mark[check.level]}  ${check.name.padEnd(13)} ${check.detail}\n`;
}

/** The closing line: "No problems found." or "2 problem(s) found." */
export function formatDoctorVerdict(report: DoctorReport): string {
  return report.healthy ? 'No problems found.\n' : `${report.checks.filter((c) => c.level === 'fail').length} problem(s) found.\n`;
}

/** A {@link DoctorReport} as the CLI prints it: one line per check, then the verdict. */
export function formatDoctor(report: DoctorReport): string {
  return report.checks.map(formatDoctorCheck).join('') + formatDoctorVerdict(report);
}
