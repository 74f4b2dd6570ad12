import { MediaStorageError, redactUrls } from '../core/errors.js';
import {
  backendDefinition,
  backendDefinitions,
  backendForScheme,
  maskOptions,
  maskValue,
  parseOptionText,
  queryNamesOf,
  resolveOptions,
  type BackendDefinition,
  type ConfigContext,
  type OptionSpec,
  type OptionsOf,
  type OptionsSchema,
  type StorageClass,
  type StorageUrlParts,
} from '../core/definition.js';
import type { ServingOptions } from '../core/serving.js';
import type { MediaStorage } from '../core/types.js';
import { withRetry, type RetryOptions } from '../layers/retry.js';
import { BUILTIN_BACKENDS, registerBuiltinBackends } from './backends.js';
import { describeEnvTypo, envVariablesOf, findEnvTypos } from './env-typos.js';

export { CONFIG_ENV_NAMES, configEnvNames, describeEnvTypo, envVariablesOf, findEnvTypos, type EnvTypo } from './env-typos.js';
export type { LocalConfig } from '../local/definition.js';
export type { MemoryConfig } from '../memory/definition.js';
export type { S3Config } from '../s3/definition.js';
export type { CloudinaryConfig } from '../cloudinary/definition.js';
export type { B2Config } from '../b2/definition.js';
export type { AzureConfig } from '../azure/definition.js';
export { maskValue };

type Builtin = (typeof BUILTIN_BACKENDS)[number];
type BuiltinOptions = { [D in Builtin as D['name']]: OptionsOf<D['options']> & ServingOptions };

/**
 * The options of each backend configuration can create, by backend name: derived from the
 * backends' definitions. A plugin adds its own by declaration merging:
 *
 * @example
 * ```ts
 * declare module 'media-storage' {
 *   interface StorageBackendOptions { webdav: OptionsOf<typeof webdavOptions> }
 * }
 * ```
 */
// An interface (not a type) so that plugins can merge into it; empty on purpose.
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface StorageBackendOptions extends BuiltinOptions {}

/** Options of each backend, by name; `backend` picks the backend. */
export type StorageConfig = { [N in keyof StorageBackendOptions]: { backend: N } & StorageBackendOptions[N] }[keyof StorageBackendOptions];

/** Options of {@link createMediaStorage} and {@link createMediaStorageFromEnv}. */
export interface CreateOptions {
  /**
   * The retry layer the storage comes wrapped in (`withRetry` from `media-storage/layers`), so that
   * a temporary failure (UNAVAILABLE) is tried again: its options, or `false` for the bare
   * backend. Default: `withRetry` with its defaults, for backends that call a service (not local
   * or memory, which are returned as they are).
   */
  retry?: false | RetryOptions;
  /** How backends are loaded, by name, instead of their definitions' `load()`; for tests. */
  loaders?: Partial<Record<string, () => Promise<StorageClass<any>>>>;
}

/** Options of {@link configFromEnv}. */
export interface ConfigFromEnvOptions {
  /**
   * Told about each variable that looks like a misspelling of one configFromEnv reads
   * (`MEDIA_STORAGE_URI`, `CLOUDNARY_URL`; see `findEnvTypos`). Default: a process warning
   * (code `MEDIA_STORAGE_ENV_TYPO`), once per name; `false` for none.
   */
  warn?: ((message: string) => void) | false;
}

const warnedTypos = new Set<string>();

function warnOfTypos(env: NodeJS.ProcessEnv, warn: ConfigFromEnvOptions['warn']): void {
  if (warn === false) return;
  for (const typo of findEnvTypos(env)) {
    const message = describeEnvTypo(typo);
    if (warn) {
      warn(message);
    } else if (!warnedTypos.has(typo.name)) {
      warnedTypos.add(typo.name);
      process.emitWarning(`media-storage: ${message}`, { code: 'MEDIA_STORAGE_ENV_TYPO' });
    }
  }
}

function configError(message: string): MediaStorageError {
  return new MediaStorageError('CONFIG', message, { operation: 'configure' });
}

/** An http(s) URL with a host; `host:port` alone (no scheme) is the usual slip, named as such. */
export function parseHttpUrl(value: string, name: string): string {
  return parseOptionText({ kind: 'url' }, value, name) as string;
}

function decodeURIComponentSafe(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

/** The query names of a scheme's secret options (`?secret=` on file:), masked by {@link maskUrl}. */
function secretQueryNames(scheme: string): string[] {
  const definition = backendForScheme(scheme);
  if (!definition) return [];
  return Object.entries(definition.options).flatMap(([name, spec]) => (spec.secret ? [...queryNamesOf(name, spec), ...(spec.deprecated ?? [])] : []));
}

function maskSecretParams(scheme: string, text: string): string {
  const names = secretQueryNames(scheme.replace(/:\/\/$|:$/, ''));
  if (names.length === 0) return text;
  return text.replace(/([?&])([^=&#]+)=([^&#]*)/g, (whole, sep: string, name: string) =>
    names.includes(decodeURIComponentSafe(name)) ? `${sep}${name}=***` : whole,
  );
}

/**
 * A storage URL with its secrets masked, for messages and reports: the password (`KEY:SECRET@`
 * becomes `KEY***:***@`, up to the last `@` before the query, so that a secret with an unencoded
 * `/` or `@` is masked whole), query parameters that are secrets of the scheme's backend
 * (`?secret=`) and signatures and tokens, and the part after `:` of an authority without `@`
 * (`cloudinary://KEY:SECRET`, a URL missing its host).
 */
export function maskUrl(url: string): string {
  registerBuiltinBackends();
  const match = /^([a-z][a-z0-9+.-]*:\/\/)([\s\S]*)$/i.exec(url);
  if (!match) {
    const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1];
    return redactUrls(scheme ? maskSecretParams(scheme, url) : url);
  }
  const scheme = match[1]!;
  const rest = maskSecretParams(scheme, match[2]!);
  const authorityEnd = rest.search(/[/?#]/);
  const authority = authorityEnd === -1 ? rest : rest.slice(0, authorityEnd);
  // Where the parser would see no credentials, a path may hold an `@`; else the last `@` before
  // the query ends them, as a secret with an unencoded `/` or `@` is meant.
  const beforeQuery = rest.replace(/[?#][\s\S]*$/, '');
  const at = !authority.includes('@') && URL.canParse(url) ? -1 : beforeQuery.lastIndexOf('@');
  if (at !== -1) {
    const user = rest.slice(0, at).split(':')[0] ?? '';
    return `${scheme}${user ? `${maskValue(decodeURIComponentSafe(user))}:` : ''}***@${redactUrls(rest.slice(at + 1))}`;
  }
  const colon = authority.indexOf(':');
  if (colon !== -1 && !/^\d{0,5}$/.test(authority.slice(colon + 1))) {
    const user = authority.slice(0, colon);
    return `${scheme}${user ? maskValue(decodeURIComponentSafe(user)) : ''}:***${redactUrls(rest.slice(authority.length))}`;
  }
  return `${scheme}${redactUrls(rest)}`;
}

/** One `?name=` a storage URL takes: the option (or URL-only parameter) it sets. */
export interface StorageUrlOption {
  /** The option it sets (`uploadPrefix` for `upload_prefix`). */
  option: string;
  spec: OptionSpec;
  /** True for a URL-only parameter, which is not an option of the storage. */
  urlOnly: boolean;
  /** A deprecated name of the option. */
  deprecated: boolean;
}

/** The `?name=value` options a backend's storage URLs take, by query name. */
export function storageUrlOptions(definition: BackendDefinition): Map<string, StorageUrlOption> {
  const out = new Map<string, StorageUrlOption>();
  const add = (schema: OptionsSchema, urlOnly: boolean): void => {
    for (const [option, spec] of Object.entries(schema)) {
      for (const name of queryNamesOf(option, spec)) out.set(name, { option, spec, urlOnly, deprecated: false });
      if (queryNamesOf(option, spec).length > 0) for (const old of spec.deprecated ?? []) out.set(old, { option, spec, urlOnly, deprecated: true });
    }
  };
  add(definition.options, false);
  if (definition.url?.query) add(definition.url.query, true);
  return out;
}

function contextFor(source: string, prefix: string): ConfigContext {
  return {
    source,
    fail: (message: string): never => {
      throw configError(`${prefix}${message}`);
    },
    parseUrl: (text: string, from: string) => parseStorageUrl(text, from) as { backend: string } & Record<string, unknown>,
  };
}

function urlParts(text: string, url: URL | undefined, scheme: string): StorageUrlParts {
  const pathname = url ? decodeURIComponentSafe(url.pathname) : decodeURIComponentSafe(text.slice(scheme.length + 1).split('?', 1)[0]!);
  const trimmed = pathname.replace(/^\/+|\/+$/g, '');
  return {
    text,
    scheme,
    host: url ? decodeURIComponentSafe(url.hostname) : '',
    pathname,
    prefix: trimmed === '' ? undefined : `${trimmed}/`,
    user: url?.username ? decodeURIComponentSafe(url.username) : undefined,
    password: url?.password ? decodeURIComponentSafe(url.password) : undefined,
    query: url ? new URLSearchParams(url.searchParams) : new URLSearchParams(text.includes('?') ? text.slice(text.indexOf('?') + 1) : ''),
  };
}

function schemeList(): string {
  const schemes = backendDefinitions().flatMap((d) => (d.url ? d.schemes.map((s) => `${s}:`) : []));
  return `${schemes.slice(0, -1).join(', ')} or ${schemes.at(-1)}`;
}

/**
 * Parses a storage URL by the scheme's backend definition: `file:///var/app/media?publicBaseUrl=/media`,
 * `s3://bucket/prefix?region=…`, `cloudinary://key:secret@cloud`, `b2://keyId:key@bucket/prefix`,
 * `azure://container/prefix` (the connection string from AZURE_STORAGE_CONNECTION_STRING, or
 * `azure://ACCOUNT:KEY@container/prefix` with `?endpoint=` for another Blob endpoint than
 * ACCOUNT.blob.core.windows.net), `memory://`, and the schemes of registered plugins. Every option
 * of a backend with a text form can be given as `?name=value`. `source` names where it came from
 * (e.g. MEDIA_STORAGE_URL) in error messages.
 */
export function parseStorageUrl(input: string, source = 'storage URL'): StorageConfig {
  registerBuiltinBackends();
  const text = input.trim();
  if (text === '') throw configError(`${source} is empty`);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(text)?.[1]?.toLowerCase();
  if (!scheme) throw configError(`${source} must start with a scheme: ${schemeList()}`);
  const definition = backendForScheme(scheme);
  if (!definition?.url) throw configError(`${source}: unknown scheme "${scheme}:"; use ${schemeList()}`);
  // file:./media and file:media are relative paths, which URL cannot hold: the path is taken as written.
  const opaque = !text.slice(scheme.length + 1).startsWith('//');
  let url: URL | undefined;
  if (!opaque) {
    try {
      url = new URL(text);
    } catch {
      throw configError(`${source} is not a valid URL (${maskUrl(text).replace(/\?.*$/, '')})`);
    }
  }
  const context = contextFor(source, `${source}: `);
  const parts = urlParts(text, url, scheme);
  const fromUrl = definition.url.parse(parts, context);
  const known = storageUrlOptions(definition);
  const options: Record<string, unknown> = { ...fromUrl };
  const extra: Record<string, unknown> = {};
  for (const [name, raw] of parts.query) {
    const target = known.get(name);
    if (!target) {
      const names = [...known.keys()].filter((n) => !known.get(n)!.deprecated);
      throw configError(`${source}: unknown option "${name}" for ${definition.name} (known: ${names.join(', ')})`);
    }
    const value = parseOptionText(target.spec, raw, `${source} option ${name}`);
    if (target.urlOnly) extra[target.option] = value;
    else options[target.deprecated ? name : target.option] = value;
  }
  const finished = definition.url.finish ? definition.url.finish(options, extra, context) : options;
  return { backend: definition.name, ...finished } as StorageConfig;
}

type Getter = (name: string) => string | undefined;

/** The options a backend's options' own variables set. */
function optionsFromEnv(definition: BackendDefinition, get: Getter): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, spec] of Object.entries(definition.options)) {
    const variable = (spec.env ?? []).find((v) => get(v) !== undefined);
    if (variable) out[name] = parseOptionText(spec, get(variable)!, variable);
  }
  return out;
}

/** The environment's configuration for one backend, chosen by {@link configFromEnv}. */
function backendFromEnv(definition: BackendDefinition, get: Getter): StorageConfig {
  const env = definition.env!;
  const context = contextFor(definition.name, '');
  let options = optionsFromEnv(definition, get);
  if (env.read) {
    options = env.read(get, options, context);
  } else {
    const setVariable = envVariablesOf(definition).find((v) => get(v) !== undefined);
    const required = [
      ...Object.entries(definition.options)
        .filter(([, spec]) => spec.required)
        .map(([name]) => name),
      ...(env.require ?? []),
    ];
    for (const name of required) {
      const variable = definition.options[name]?.env?.[0];
      if (options[name] === undefined && variable)
        context.fail(`${variable} is not set (${setVariable} is, so ${definition.title ?? definition.name} was meant)`);
    }
  }
  return { backend: definition.name, ...options } as StorageConfig;
}

const STRENGTH = { strong: 3, weak: 2, fallback: 1 } as const;

/**
 * The configuration the environment asks for: MEDIA_STORAGE_URL, else the variables of the
 * backends in their order (the AWS_* variables django-storages users already have; CLOUDINARY_URL;
 * B2_*; AZURE_STORAGE_CONNECTION_STRING with AZURE_STORAGE_CONTAINER (and AZURE_STORAGE_LOCATION,
 * AZURE_STORAGE_VISIBILITY); then registered plugins'), else the local disk (MEDIA_ROOT, default
 * ./media, served under MEDIA_URL, default /media). A variable that looks like a misspelling of one
 * of these (`MEDIA_STORAGE_URI`, `CLOUDNARY_URL`, `AWS_S3_ENDPOINT`) is warned about (see
 * {@link ConfigFromEnvOptions.warn}).
 */
export function configFromEnv(env: NodeJS.ProcessEnv = process.env, options: ConfigFromEnvOptions = {}): StorageConfig {
  registerBuiltinBackends();
  warnOfTypos(env, options.warn);
  const get: Getter = (name) => {
    const v = env[name];
    return v === undefined || v.trim() === '' ? undefined : v.trim();
  };
  const url = get('MEDIA_STORAGE_URL');
  if (url) return parseStorageUrl(url, 'MEDIA_STORAGE_URL');
  let chosen: BackendDefinition | undefined;
  let strength = 0;
  for (const definition of backendDefinitions()) {
    if (!definition.env) continue;
    const detected = definition.env.detect ? definition.env.detect(get) : envVariablesOf(definition).some((v) => get(v) !== undefined) ? 'strong' : undefined;
    if (detected && STRENGTH[detected] > strength) {
      chosen = definition;
      strength = STRENGTH[detected];
    }
  }
  if (!chosen) throw configError('No storage is configured: set MEDIA_STORAGE_URL');
  return backendFromEnv(chosen, get);
}

function definitionOf(backend: unknown): BackendDefinition {
  registerBuiltinBackends();
  const definition = typeof backend === 'string' ? backendDefinition(backend) : undefined;
  if (!definition) {
    const names = backendDefinitions().map((d) => d.name);
    throw configError(`Unknown backend "${String(backend)}" (known: ${names.join(', ')}; a plugin's backend needs registerBackend first)`);
  }
  return definition;
}

/**
 * Creates the storage a configuration (or a storage URL) describes, loading only that backend's
 * SDK. Deprecated option names are resolved (with one warning each) and every option is checked
 * against the backend's definition. A backend that calls a service comes wrapped in `withRetry`
 * (see {@link CreateOptions.retry}).
 */
export async function createMediaStorage(config: StorageConfig | string, options: CreateOptions = {}): Promise<MediaStorage> {
  const resolved = typeof config === 'string' ? parseStorageUrl(config) : config;
  const { backend, ...backendOptions } = resolved as { backend: string } & Record<string, unknown>;
  const definition = definitionOf(backend);
  const checked = resolveOptions(definition, backendOptions);
  const load = options.loaders?.[backend] ?? definition.load;
  const Storage = await load();
  const storage = new Storage(checked as never);
  const retry = options.retry ?? (definition.retry === false ? false : {});
  return retry === false ? storage : withRetry(storage, retry);
}

/** `createMediaStorage(configFromEnv(env), options)`: the storage the environment asks for. */
export async function createMediaStorageFromEnv(env: NodeJS.ProcessEnv = process.env, options: CreateOptions = {}): Promise<MediaStorage> {
  return createMediaStorage(configFromEnv(env), options);
}

/** The configuration with every secret masked (by its backend's definition), for logs and the doctor's report. */
export function describeConfig(config: StorageConfig): Record<string, unknown> {
  registerBuiltinBackends();
  const { backend, ...rest } = config as { backend: string } & Record<string, unknown>;
  const schema = backendDefinition(backend)?.options ?? {};
  return { backend, ...maskOptions(schema, rest, maskUrl) };
}
