/**
 * What a backend says about itself: its name, URL schemes, options (with their types, ranges,
 * secret flags, environment variables and URL names), the packages it needs and how to load its
 * storage class. Configuration (storage URLs, the environment), masking, the doctor, the CLI's
 * help and the option types of each backend are all derived from these definitions, and a
 * third-party backend joins them with {@link registerBackend}.
 *
 * A definition never imports its SDK or the SDK's types: the main entry's declarations carry
 * every definition, and an S3 user's compiler must not need Cloudinary's types.
 */
import { MediaStorageError, redactUrls } from './errors.js';
import type { MediaStorage } from './types.js';
import { importPeer } from './peer.js';

// ------------------------------------------------------------------ option schema

/** What every option spec may say. */
export interface OptionSpecBase {
  /** One line for the CLI's help and docs tables ("CDN or custom domain of public URLs"). */
  help?: string;
  /** The option must be given (`s3: bucket is required`). */
  required?: boolean;
  /** A secret: masked whole (`***`) in descriptions and storage URLs shown back. */
  secret?: boolean;
  /** An identifier that is half a credential (an access key id): shown as its first 4 characters. */
  identifier?: boolean;
  /**
   * Names of the option in a storage URL's query (`?upload_prefix=`). Default: its own name, for
   * scalar kinds; `false` when a URL cannot set it.
   */
  query?: readonly string[] | false;
  /** Environment variables that set it, first set wins (`['B2_LOCATION']`). */
  env?: readonly string[];
  /**
   * Old names still accepted for one minor version: each use emits one process warning (code
   * `MEDIA_STORAGE_DEPRECATED`), and giving an old and the new name at once is CONFIG.
   */
  deprecated?: readonly string[];
}

/** A string option. */
export interface StringOptionSpec extends OptionSpecBase {
  kind: 'string';
  default?: string;
}
/** An `http://` or `https://` URL with a host. */
export interface UrlOptionSpec extends OptionSpecBase {
  kind: 'url';
  default?: string;
}
/** A boolean; in URLs and variables `true`/`false`, `1`/`0`, `yes`/`no`, `on`/`off`. */
export interface BooleanOptionSpec extends OptionSpecBase {
  kind: 'boolean';
  default?: boolean;
}
/** A number (`integer`: a whole one), optionally bounded, with its unit for messages. */
export interface NumberOptionSpec extends OptionSpecBase {
  kind: 'number' | 'integer';
  default?: number;
  /** Smallest value allowed; default: above 0. */
  min?: number;
  max?: number;
  /** What the number counts, for messages and help: `ms`, `s` or `bytes`. */
  unit?: 'ms' | 's' | 'bytes';
}
/** One of a fixed set of strings. */
export interface EnumOptionSpec<V extends string = string> extends OptionSpecBase {
  kind: 'enum';
  values: readonly V[];
  default?: V;
}
/** A nested object of options (S3's `credentials`). */
export interface ObjectOptionSpec<S extends OptionsSchema = OptionsSchema> extends OptionSpecBase {
  kind: 'object';
  fields: S;
}
/** A carrier of a type and nothing else (see {@link typed}). */
export interface TypeOf<T> {
  readonly __type?: T;
}
/**
 * An option of any other type (`string | Buffer`, `string | false`), with its own check and,
 * for URLs and variables, its own parser.
 */
export interface CustomOptionSpec<T = unknown> extends OptionSpecBase {
  kind: 'custom';
  type: TypeOf<T>;
  /** The problem with a value (`"must be a string or a Buffer"`), or undefined when it is fine. */
  check?: (value: unknown) => string | undefined;
  /** A value from a URL or a variable; throw `Error(problem)` for a bad one. */
  parse?: (raw: string) => T;
}

/** One option of a backend. */
export type OptionSpec = StringOptionSpec | UrlOptionSpec | BooleanOptionSpec | NumberOptionSpec | EnumOptionSpec | ObjectOptionSpec | CustomOptionSpec<any>;
/** A backend's options, by name. */
export type OptionsSchema = { readonly [name: string]: OptionSpec };

/** `typed<string | Buffer>()`: the type of a custom option. */
export function typed<T>(): TypeOf<T> {
  return {};
}

/** The TypeScript type of one option's value. */
export type OptionValue<O> = O extends { kind: 'string' | 'url' }
  ? string
  : O extends { kind: 'boolean' }
    ? boolean
    : O extends { kind: 'number' | 'integer' }
      ? number
      : O extends { kind: 'enum'; values: readonly (infer V)[] }
        ? V
        : O extends { kind: 'object'; fields: infer F extends OptionsSchema }
          ? OptionsOf<F>
          : O extends { kind: 'custom'; type: TypeOf<infer T> }
            ? T
            : never;

type RequiredNames<S> = { [K in keyof S]: S[K] extends { required: true } ? K : never }[keyof S];
/** Every option as optional: a homomorphic mapped type, so each keeps the TSDoc written on its spec. */
type AllOptional<S> = { -readonly [K in keyof S]?: OptionValue<S[K]> };

/**
 * The options object a schema describes: required specs required, the rest optional, each typed
 * from its kind and documented by the TSDoc on its spec (editors show it on hover).
 */
export type OptionsOf<S extends OptionsSchema> = Omit<AllOptional<S>, RequiredNames<S>> & Required<Pick<AllOptional<S>, RequiredNames<S>>>;

/** Checks a schema and keeps its literal types (`values: ['public', 'private']`), for {@link OptionsOf}. */
export function defineOptions<const S extends OptionsSchema>(schema: S): S {
  return schema;
}

// ------------------------------------------------------------------ definitions

/** A storage class as a definition loads it. */
export type StorageClass<O = any> = new (options: O) => MediaStorage;

/** A storage URL taken apart, for a definition's {@link BackendUrlSpec.parse}. */
export interface StorageUrlParts {
  /** The URL as given (trimmed). */
  text: string;
  /** Lower case, without the colon: `s3`. */
  scheme: string;
  /** The host, percent-decoded (an S3 bucket, a Cloudinary cloud name). */
  host: string;
  /** The path, percent-decoded, as written (`/var/app/media`; `./media` for `file:./media`); `''` when none. */
  pathname: string;
  /** The path as a key prefix (`media/`), or undefined when the URL has no path. */
  prefix: string | undefined;
  /** The user of `user:password@`, percent-decoded. */
  user: string | undefined;
  password: string | undefined;
  /** The query; the options it sets are read from the schema after {@link BackendUrlSpec.parse}. */
  query: URLSearchParams;
}

/** Helpers handed to a definition's URL and environment readers. */
export interface ConfigContext {
  /** Where the configuration came from: `MEDIA_STORAGE_URL`, `--url`. */
  source: string;
  /** Throws the CONFIG error `message` (prefixed with the source for URLs). */
  fail(message: string): never;
  /** Parses a whole storage URL (a CLOUDINARY_URL), as `parseStorageUrl` does. */
  parseUrl(text: string, source: string): { backend: string } & Record<string, unknown>;
}

/** How a backend reads a storage URL. */
export interface BackendUrlSpec {
  /** Shown in the CLI's help: `s3://bucket/prefix`. */
  example: string;
  /** What else the help says about the form: `(s3://KEY:SECRET@bucket/prefix; else the AWS SDK's credentials)`. */
  note?: string;
  /**
   * The options the URL's host, path and user info give (`{ bucket: parts.host, prefix: parts.prefix }`);
   * the query is read from the schema's `query` names afterwards. A parser that reads query
   * parameters itself deletes them from `parts.query`.
   */
  parse(parts: StorageUrlParts, context: ConfigContext): Record<string, unknown>;
  /**
   * Parameters only a URL has, not options of the storage (Azure's `endpoint`, folded into the
   * connection string): read like options, then handed to {@link finish}.
   */
  query?: OptionsSchema;
  /** The options, given those the URL's query set and its URL-only parameters (`extra`). */
  finish?(options: Record<string, unknown>, extra: Record<string, unknown>, context: ConfigContext): Record<string, unknown>;
}

/** How a backend is configured from environment variables. */
export interface BackendEnvSpec {
  /** Variables read besides the options' own `env` names (never reported as typos). */
  variables?: readonly string[];
  /**
   * Whether the environment asks for this backend: `strong` when one of its own variables is set,
   * `weak` when only variables shared with other software are (AWS_ACCESS_KEY_ID). Default:
   * `strong` when any of its variables is set. The first strong backend wins, else the first weak,
   * else the first `fallback` (the local disk, for an environment that sets nothing).
   */
  detect?(get: (name: string) => string | undefined): 'strong' | 'weak' | 'fallback' | undefined;
  /** Options that must come from the environment once the backend is chosen, beyond the required ones. */
  require?: readonly string[];
  /**
   * The options, given those the options' `env` names set: adds and replaces what one variable per
   * option cannot say (django-storages' AWS_* settings, a whole CLOUDINARY_URL).
   */
  read?(get: (name: string) => string | undefined, fromOptions: Record<string, unknown>, context: ConfigContext): Record<string, unknown>;
}

/**
 * Everything media-storage knows about one backend. Built-in backends have one in
 * `src/<backend>/definition.ts`; a plugin passes its own to {@link registerBackend}.
 *
 * @typeParam S - the options schema; {@link OptionsOf} gives the options type.
 * @typeParam N - the name, as a literal type.
 */
export interface BackendDefinition<S extends OptionsSchema = OptionsSchema, N extends string = string> {
  /** The backend's name: `StorageConfig.backend`, `storage.name`, messages (`s3: bucket is required`). */
  name: N;
  /** What it is, for the help: `Amazon S3 and S3-compatible stores`. */
  title?: string;
  /** URL schemes it answers (`['s3']`; local has `['file']`), lower case, without the colon. */
  schemes: readonly string[];
  options: S;
  /** npm packages the storage class needs (`['cloudinary']`), named in the "npm install" message. */
  peers?: readonly string[];
  url?: BackendUrlSpec;
  env?: BackendEnvSpec;
  /**
   * Where the bytes live: `local-disk` (the ephemeral-disk checks apply), `process` (memory) or
   * `service` (default).
   */
  durability?: 'local-disk' | 'process' | 'service';
  /** Which credentials to check when the service rejects them, for the doctor. */
  credentialsHint?: string;
  /**
   * Whether `createMediaStorage` wraps it in `withRetry` by default. Default true; false for
   * backends that make no network calls.
   */
  retry?: boolean;
  /** The storage class, loaded on first use (with {@link lazyStorageClass}), so an unused backend's SDK is never loaded. */
  load(): Promise<StorageClass<any>>;
}

/** Checks a definition and keeps its schema's literal types. */
export function defineBackend<const S extends OptionsSchema, const N extends string>(definition: BackendDefinition<S, N>): BackendDefinition<S, N> {
  return definition;
}

// ------------------------------------------------------------------ registry

const registered = new Map<string, BackendDefinition>();

function configError(message: string, backend?: string): MediaStorageError {
  return new MediaStorageError('CONFIG', message, { operation: 'configure', ...(backend ? { backend } : {}) });
}

/**
 * Adds a backend, so that `createMediaStorage({ backend: name, ... })`, storage URLs of its schemes
 * (in `MEDIA_STORAGE_URL` too), `createMediaStorageFromEnv` (through its `env` spec) and the CLI
 * (`--require` or `MEDIA_STORAGE_PLUGINS`) can use it. Registering the same definition again does
 * nothing; another definition under a name or scheme already taken is CONFIG. Returns the definition.
 *
 * @example
 * ```ts
 * import { defineBackend, defineOptions, lazyStorageClass, registerBackend } from 'media-storage/adapter';
 * registerBackend(defineBackend({
 *   name: 'webdav',
 *   schemes: ['webdav'],
 *   options: defineOptions({ endpoint: { kind: 'url', required: true } }),
 *   url: { example: 'webdav://host/path', parse: (url) => ({ endpoint: `https://${url.host}${url.pathname}` }) },
 *   load: (): Promise<StorageClass> => lazyStorageClass('webdav', ['webdav'], () => import('./storage.js'), 'WebDavStorage'),
 * }));
 * ```
 */
export function registerBackend<D extends BackendDefinition<any, string>>(definition: D): D {
  const def = definition as unknown as BackendDefinition;
  if (!def || typeof def.name !== 'string' || !/^[a-z][a-z0-9-]*$/.test(def.name)) {
    throw configError('registerBackend: a definition needs a lower-case name (letters, digits, dashes)');
  }
  if (typeof def.load !== 'function' || !def.options || !Array.isArray(def.schemes)) {
    throw configError(`registerBackend: ${def.name}: a definition needs options, schemes (an array) and load()`, def.name);
  }
  const existing = registered.get(def.name);
  if (existing === def) return definition;
  if (existing) throw configError(`registerBackend: a backend named "${def.name}" is registered already`, def.name);
  for (const scheme of def.schemes) {
    const owner = backendForScheme(scheme);
    if (owner) throw configError(`registerBackend: ${def.name}: the URL scheme "${scheme}:" belongs to ${owner.name}`, def.name);
  }
  registered.set(def.name, def);
  return definition;
}

/** Every registered backend, built-in ones first, in the order they were registered. */
export function backendDefinitions(): readonly BackendDefinition[] {
  return [...registered.values()];
}

/** The backend of that name, or undefined. */
export function backendDefinition(name: string): BackendDefinition | undefined {
  return registered.get(name);
}

/** The backend answering a URL scheme (`s3`, `file`), or undefined. */
export function backendForScheme(scheme: string): BackendDefinition | undefined {
  const wanted = scheme.toLowerCase();
  for (const def of registered.values()) if (def.schemes.includes(wanted)) return def;
  return undefined;
}

// ------------------------------------------------------------------ loading

/**
 * Imports a backend's module and returns its storage class; a missing peer package becomes a
 * CONFIG error that says what to install (`npm install cloudinary`).
 */
export async function lazyStorageClass(
  backend: string,
  peers: readonly string[],
  importer: () => Promise<Record<string, unknown>>,
  exportName: string,
): Promise<StorageClass<any>> {
  const mod = await importPeer(importer, { packages: peers, usedBy: `The ${backend} backend`, backend });
  const Storage = mod[exportName];
  if (typeof Storage !== 'function') throw configError(`${backend}: its module exports no class ${exportName}`, backend);
  return Storage as StorageClass<any>;
}

// ------------------------------------------------------------------ values

const BOOLEAN_WORDS: Record<string, boolean> = { true: true, '1': true, yes: true, on: true, false: false, '0': false, no: false, off: false, none: false };

const UNIT_WORDS: Record<NonNullable<NumberOptionSpec['unit']>, string> = { ms: ' of milliseconds', s: ' of seconds', bytes: ' of bytes' };

function quote(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(redactUrls(value));
  if (value === null || typeof value !== 'object') return String(value);
  return Array.isArray(value) ? 'an array' : 'an object';
}

function numberProblem(spec: NumberOptionSpec, value: number): string | undefined {
  const unit = spec.unit ? UNIT_WORDS[spec.unit] : '';
  const whole = spec.kind === 'integer';
  const range =
    spec.min !== undefined && spec.max !== undefined
      ? ` from ${spec.min} to ${spec.max}`
      : spec.min !== undefined
        ? ` of at least ${spec.min}`
        : spec.max !== undefined
          ? ` up to ${spec.max}`
          : '';
  const what = `${whole ? 'a whole number' : spec.min === undefined ? 'a positive number' : 'a number'}${unit}${range}`;
  if (!Number.isFinite(value) || (whole && !Number.isInteger(value))) return `must be ${what}`;
  if (spec.min === undefined ? value <= 0 : value < spec.min) return `must be ${what}`;
  if (spec.max !== undefined && value > spec.max) return `must be ${what}`;
  return undefined;
}

function urlProblem(value: string): string | undefined {
  const trimmed = value.trim();
  if (!/^https?:\/\//i.test(trimmed)) {
    const hint = /^[^/:]+:\d+/.test(trimmed) || /^[\w.-]+$/.test(trimmed) ? `: add the scheme, e.g. http://${trimmed}` : '';
    return `must be an http:// or https:// URL (got ${quote(trimmed)})${hint}`;
  }
  if (!URL.canParse(trimmed) || new URL(trimmed).hostname === '') return `is not a valid URL (got ${quote(trimmed)})`;
  return undefined;
}

/** The problem with a given value of an option, or undefined. The caller names the option. */
function valueProblem(spec: OptionSpec, value: unknown, path: string, backend: string): string | undefined {
  switch (spec.kind) {
    case 'string':
      return typeof value === 'string' ? undefined : `must be a string (got ${quote(value)})`;
    case 'url':
      return typeof value === 'string' ? urlProblem(value) : `must be an http:// or https:// URL (got ${quote(value)})`;
    case 'boolean':
      return typeof value === 'boolean' ? undefined : `must be true or false (got ${quote(value)})`;
    case 'number':
    case 'integer': {
      const problem = typeof value === 'number' ? numberProblem(spec, value) : numberProblem(spec, NaN);
      return problem && `${problem} (got ${quote(value)})`;
    }
    case 'enum':
      return spec.values.includes(value as string)
        ? undefined
        : `must be ${spec.values
            .map((v) => JSON.stringify(v))
            .join(', ')
            .replace(/, ([^,]*)$/, ' or $1')} (got ${quote(value)})`;
    case 'object':
      // Nested fields are the backend's to check: their messages say which credential is missing.
      if (value === null || typeof value !== 'object') return `must be an object (got ${quote(value)})`;
      for (const [field, fieldSpec] of Object.entries(spec.fields)) {
        const v = (value as Record<string, unknown>)[field];
        if (v === undefined || fieldSpec.kind === 'object') continue;
        const problem = valueProblem(fieldSpec, v, `${path}.${field}`, backend);
        if (problem) return `.${field} ${problem}`;
      }
      return undefined;
    case 'custom':
      return spec.check?.(value);
  }
}

/**
 * Reads one option's value from text (a URL's query, a variable), by its kind. Throws CONFIG
 * `${label} must be ...` for a bad one.
 */
export function parseOptionText(spec: OptionSpec, raw: string, label: string): unknown {
  const fail = (problem: string): never => {
    throw configError(`${label} ${problem}`);
  };
  switch (spec.kind) {
    case 'string':
      return raw;
    case 'url':
      return urlProblem(raw) ? fail(urlProblem(raw)!) : raw.trim();
    case 'boolean': {
      const parsed = BOOLEAN_WORDS[raw.trim().toLowerCase()];
      return parsed === undefined ? fail(`must be true or false (got ${quote(raw)})`) : parsed;
    }
    case 'number':
    case 'integer': {
      const n = raw.trim() === '' ? NaN : Number(raw);
      const problem = numberProblem(spec, n);
      return problem ? fail(`${problem} (got ${quote(raw)})`) : n;
    }
    case 'enum':
      return spec.values.includes(raw)
        ? raw
        : fail(
            `must be ${spec.values
              .map((v) => JSON.stringify(v))
              .join(', ')
              .replace(/, ([^,]*)$/, ' or $1')} (got ${quote(raw)})`,
          );
    case 'object':
      return fail('cannot be given as text');
    case 'custom':
      if (!spec.parse) return raw;
      try {
        return spec.parse(raw);
      } catch (err) {
        return fail(`${err instanceof Error ? err.message : String(err)}`);
      }
  }
}

/** The URL query names of an option (its own name for scalar kinds unless `query` says otherwise). */
export function queryNamesOf(name: string, spec: OptionSpec): readonly string[] {
  if (spec.query === false || spec.kind === 'object') return [];
  return spec.query ?? [name];
}

const warnedDeprecations = new Set<string>();

/** For tests: warn again about deprecated option names already warned about. */
export function resetDeprecationWarnings(): void {
  warnedDeprecations.clear();
}

/** One process warning per old name (code `MEDIA_STORAGE_DEPRECATED`). */
export function warnDeprecatedOnce(backend: string, oldName: string, newName: string): void {
  const id = `${backend}.${oldName}`;
  if (warnedDeprecations.has(id)) return;
  warnedDeprecations.add(id);
  process.emitWarning(
    `media-storage: ${backend}: the option ${oldName} is deprecated; use ${newName} (the same meaning). ${oldName} goes in the next major version.`,
    {
      code: 'MEDIA_STORAGE_DEPRECATED',
      type: 'DeprecationWarning',
    },
  );
}

/**
 * A backend's options with deprecated names turned into the current ones (one warning each),
 * checked against the schema: required options given, every given value of its kind and range.
 * Options the schema does not describe (an injected client, a fetch) pass through unchecked.
 * Both `createMediaStorage` and the storage constructors call it, so the rules are the same.
 * Throws CONFIG `${backend}: ${option} ...`.
 */
export function resolveOptions<T extends object>(definition: Pick<BackendDefinition, 'name' | 'options'>, options: T): T {
  const backend = definition.name;
  if (options === null || typeof options !== 'object') throw configError(`${backend}: options must be an object`, backend);
  let out: Record<string, unknown> = options as Record<string, unknown>;
  for (const [name, spec] of Object.entries(definition.options)) {
    for (const old of spec.deprecated ?? []) {
      if (out[old] === undefined) continue;
      if (out[name] !== undefined) throw configError(`${backend}: give ${name} or its deprecated name ${old}, not both`, backend);
      warnDeprecatedOnce(backend, old, name);
      if (out === (options as unknown)) out = { ...out };
      out[name] = out[old];
      delete out[old];
    }
    const value = out[name];
    if (value === undefined) {
      if (spec.required) throw configError(`${backend}: ${name} is required`, backend);
      continue;
    }
    const problem = valueProblem(spec, value, name, backend);
    if (problem) throw configError(`${backend}: ${name}${problem.startsWith('.') ? '' : ' '}${problem}`, backend);
  }
  return out as T;
}

// ------------------------------------------------------------------ masking

/** Shows the first 4 characters of an identifier (an access key id), never of a secret. */
export function maskValue(value: string): string {
  return value.length <= 4 ? '***' : `${value.slice(0, 4)}***`;
}

const SECRET_NAME = /secret|password|token|connectionstring|privatekey|^key$/i;

/**
 * Options with every secret masked, from the schema's `secret` and `identifier` flags; strings
 * that look like URLs go through `maskUrl` (an endpoint may carry credentials too).
 */
export function maskOptions(schema: OptionsSchema, options: Record<string, unknown>, maskUrl: (url: string) => string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(options)) {
    const spec = schema[name];
    // An option no schema describes (a plugin's, a typo) is masked when its name says it is a secret.
    out[name] = !spec && typeof value === 'string' && SECRET_NAME.test(name) ? '***' : maskOne(spec, value, maskUrl);
  }
  return out;
}

function maskOne(spec: OptionSpec | undefined, value: unknown, maskUrl: (url: string) => string): unknown {
  if (value === undefined || value === null || typeof value === 'boolean' || typeof value === 'number') return value;
  if (spec?.secret) return '***';
  if (Buffer.isBuffer(value)) return '***';
  if (typeof value === 'string') {
    if (spec?.identifier) return maskValue(value);
    return /^[a-z][a-z0-9+.-]*:/i.test(value) ? maskUrl(value) : value;
  }
  if (Array.isArray(value)) return value.map((v) => maskOne(undefined, v, maskUrl));
  // A plain object is options (S3's credentials); anything else (a client, an agent) is not shown.
  const proto = typeof value === 'object' ? Object.getPrototypeOf(value) : undefined;
  if (proto === Object.prototype || proto === null) {
    const fields = spec?.kind === 'object' ? spec.fields : {};
    return maskOptions(fields, value as Record<string, unknown>, maskUrl);
  }
  return typeof value === 'function' ? '[function]' : '[object]';
}
