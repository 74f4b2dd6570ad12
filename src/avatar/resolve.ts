import { forEachConcurrent } from '../core/pool.js';
import { isNotFound } from '../core/errors.js';
import { tryValidateKey } from '../core/keys.js';
import type { MediaStorage, UrlOptions } from '../core/types.js';
import { CachedStorage } from './cached-storage.js';
import type { ExistenceCache, PrimeForKeysOptions } from './existence-cache.js';
import { initialsAvatarDataUrl, type AvatarPerson, type InitialsAvatarOptions } from './initials.js';

/** The default avatar: a fixed URL, or a function of the person (see {@link initialsAvatar}). */
export type AvatarDefault = string | ((person: AvatarPerson) => string);

/** Options of {@link resolveAvatar} and {@link resolveAvatarUrl}: the default avatar, URL options, the existence cache, error reporting and image variants. */
export interface ResolveAvatarOptions {
  /** What to show when there is no photo. Default: the built-in initials SVG as a data: URL. */
  default?: AvatarDefault;
  /** Options for `storage.url()`: expiry of signed URLs, Cloudinary transformation, ... */
  url?: UrlOptions;
  /**
   * Cache of existence checks. Not needed when `storage` is a {@link CachedStorage}, whose cache
   * is used automatically.
   */
  cache?: ExistenceCache;
  /**
   * Called when the storage fails (unavailable, auth, ...); the default avatar is shown for that
   * person. Without it failures are silent: a page must render even when the store is down.
   */
  onError?: (err: unknown, path: string) => void;
  /**
   * A variant declared with `withImages` (media-storage/images), e.g. `avatar`: its URL instead of
   * the original's, a `srcset` of its densities, and its width and height. The storage must be
   * (or wrap, as an existence cache does) an image storage.
   */
  variant?: string;
  /**
   * With `variant`: when the variant of a stored photo is missing (photos saved before the
   * layer), generate it now (`ensureVariant`, one generation per photo however many pages ask).
   * Default true; false shows the default avatar until the variant exists (backfill with the CLI).
   */
  generateMissingVariants?: boolean;
}

/** Options of {@link resolveAvatars} and {@link resolveAvatarUrls}: those of one avatar, plus how many checks run at once and whether to prime the cache by listing. */
export interface ResolveAvatarsOptions extends ResolveAvatarOptions {
  /** Most existence checks in flight at once. Default 8. */
  concurrency?: number;
  /**
   * With a cache, on a backend whose listing answers `exists()` (S3, B2): when at least
   * `minKeys` (16) of the page's unknown photos share a folder, list that folder once (at most
   * `maxObjects`, 5,000, in pages of 2,500) instead of checking each photo; see
   * {@link ExistenceCache.primeForKeys}. The answers are the same either way. `false` turns it off.
   */
  prime?: boolean | PrimeForKeysOptions;
}

/** One entry of a list page: a stored path plus, optionally, who it is for (used by the default). */
export interface AvatarEntry extends AvatarPerson {
  path: string | null | undefined;
}

/** One item of the list {@link resolveAvatars} resolves: the stored path (empty, null or undefined for none), or an {@link AvatarEntry} with the person it is for. */
export type AvatarInput = string | null | undefined | AvatarEntry;

/** What a resolver found for one person. */
export interface ResolvedAvatar {
  /** The URL to show: the photo's, or the default avatar. */
  src: string;
  /** The default avatar for this person, for the browser-side fallback (`data-avatar-fallback`). */
  fallback: string;
  /** `true` when `src` is the default (no path, invalid path, missing object, or a storage error). */
  isDefault: boolean;
  /** The normalised key, when the path was a valid key. */
  key?: string;
  /** With a variant of several densities: `"<1x url> 1x, <2x url> 2x"`, for `<img srcset>`. */
  srcset?: string;
  /** With a variant: its declared size in CSS pixels, for `<img width height>` (no layout shift). */
  width?: number;
  height?: number;
}

/**
 * The built-in default as an {@link AvatarDefault}: the initials SVG as a data: URL, or, with
 * `basePath`, as a URL served by {@link createAvatarHandler} mounted there (for pages whose
 * Content-Security-Policy does not allow `img-src data:`).
 */
export function initialsAvatar(options: InitialsAvatarOptions & { basePath?: string } = {}): (person: AvatarPerson) => string {
  const { basePath, ...svgOptions } = options;
  if (basePath !== undefined) {
    const base = basePath.replace(/\/+$/, '');
    return (person) => {
      const query = new URLSearchParams();
      if (person.name) query.set('name', String(person.name));
      if (person.id !== undefined && person.id !== null) query.set('id', String(person.id));
      if (svgOptions.size !== undefined) query.set('size', String(svgOptions.size));
      if (svgOptions.shape) query.set('shape', svgOptions.shape);
      const qs = query.toString();
      return `${base}/initials.svg${qs ? `?${qs}` : ''}`;
    };
  }
  // Page renders repeat the same people: remember recent SVGs instead of rebuilding them.
  const memo = new Map<string, string>();
  return (person) => {
    const memoKey = `${person.id ?? ''}\u0000${person.name ?? ''}`;
    let url = memo.get(memoKey);
    if (url === undefined) {
      url = initialsAvatarDataUrl(person, svgOptions);
      if (memo.size >= 2000) memo.delete(memo.keys().next().value as string);
      memo.set(memoKey, url);
    }
    return url;
  };
}

const builtInDefault = initialsAvatar();

function defaultFor(option: AvatarDefault | undefined, person: AvatarPerson): string {
  if (option === undefined) return builtInDefault(person);
  return typeof option === 'function' ? option(person) : option;
}

function toEntry(input: AvatarInput): AvatarEntry {
  return input !== null && typeof input === 'object' ? input : { path: input };
}

interface Lookup {
  /** Synchronous answer from a fresh (or stale, revalidating) cache entry, if any. */
  peek(key: string): boolean | undefined;
  exists(key: string): Promise<boolean>;
  /** Primes the cache by listing for these unknown keys, where that pays (see ExistenceCache.primeForKeys). */
  prime?(keys: string[], options: PrimeForKeysOptions, onError: ResolveAvatarOptions['onError']): Promise<void>;
  /** Records what the resolver learnt by itself (a variant it just generated). */
  learn(key: string, exists: boolean): void;
}

/** What the resolvers need of an image storage (media-storage/images' `ImageStorage`), found without importing it. */
interface VariantSource {
  readonly variants: ReadonlyMap<string, { width?: number; height?: number; densities: readonly { density: number }[] }>;
  readonly delivery: 'stored' | 'cloudinary';
  variantKey(key: string, name: string, density?: number): string;
  ensureVariant(key: string, name: string): Promise<unknown>;
}

function variantSourceOf(storage: MediaStorage): VariantSource | undefined {
  let current: unknown = storage;
  for (let depth = 0; depth < 8 && current; depth++) {
    const candidate = current as Partial<VariantSource> & { storage?: unknown };
    if (typeof candidate.ensureVariant === 'function' && candidate.variants instanceof Map) return candidate as VariantSource;
    current = candidate.storage;
  }
  return undefined;
}

function lookupFor(storage: MediaStorage, cache: ExistenceCache | undefined): Lookup {
  const [base, useCache] = cache ? [storage, cache] : storage instanceof CachedStorage ? [storage.storage, storage.cache] : [storage, undefined];
  if (!useCache) return { peek: () => undefined, exists: (key) => base.exists(key), learn: () => undefined };
  const check = (key: string) => (): Promise<boolean> => base.exists(key);
  return {
    async prime(keys, options, onError) {
      const { errors } = await useCache.primeForKeys(base, keys, options);
      for (const { prefix, error } of errors) onError?.(error, prefix);
    },
    peek(key) {
      const cached = useCache.peek(key);
      if (!cached) return undefined;
      // A stale answer is still served, but through get() so it is revalidated in the background.
      if (cached.stale) void useCache.get(key, check(key)).catch(() => undefined);
      else useCache.stats.hits++;
      return cached.exists;
    },
    exists: (key) => useCache.get(key, check(key)),
    learn: (key, exists) => useCache.set(key, exists),
  };
}

/**
 * Resolves one stored path to a URL to show: the object's URL (public or signed, as the storage
 * is configured) when it exists, else the default avatar. Empty, null, undefined and invalid
 * paths give the default without any storage call.
 */
export async function resolveAvatar(
  storage: MediaStorage,
  storedPath: string | null | undefined,
  options: ResolveAvatarOptions & { person?: AvatarPerson } = {},
): Promise<ResolvedAvatar> {
  const [result] = await resolveAvatars(storage, [{ ...options.person, path: storedPath }], { ...options, concurrency: 1 });
  return result!;
}

/** {@link resolveAvatar}, giving just the URL. */
export async function resolveAvatarUrl(
  storage: MediaStorage,
  storedPath: string | null | undefined,
  options: ResolveAvatarOptions & { person?: AvatarPerson } = {},
): Promise<string> {
  return (await resolveAvatar(storage, storedPath, options)).src;
}

/**
 * Resolves a whole page of avatars in one call: each distinct path is checked once, at most
 * `concurrency` checks run at a time, answers cached as fresh cost no request at all, and the
 * results come back in the order of `inputs`.
 */
export async function resolveAvatars(storage: MediaStorage, inputs: readonly AvatarInput[], options: ResolveAvatarsOptions = {}): Promise<ResolvedAvatar[]> {
  const concurrency = options.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new TypeError('concurrency must be a whole number >= 1');
  const lookup = lookupFor(storage, options.cache);
  const entries = inputs.map(toEntry);
  const keys = entries.map((e) => (typeof e.path === 'string' && e.path !== '' ? tryValidateKey(e.path) : undefined));

  const source = options.variant === undefined ? undefined : variantSourceOf(storage);
  const variant = options.variant === undefined ? undefined : source?.variants.get(options.variant);
  if (options.variant !== undefined && !source)
    throw new TypeError(`resolveAvatars: variant ${JSON.stringify(options.variant)} needs a storage wrapped by withImages (media-storage/images)`);
  if (options.variant !== undefined && !variant)
    throw new TypeError(`resolveAvatars: no variant named ${JSON.stringify(options.variant)}; declared: ${[...source!.variants.keys()].join(', ') || 'none'}`);
  // What decides whether a photo is shown: its variant's (1x) key when variants are stored, else its own.
  const probeKey = (key: string): string => (variant && source!.delivery === 'stored' ? source!.variantKey(key, options.variant!, 1) : key);

  // Each distinct valid key once, with what a fresh cache entry already says about it.
  const distinct = new Map<string, boolean | undefined>();
  for (const key of keys) if (key !== undefined && !distinct.has(key)) distinct.set(key, lookup.peek(probeKey(key)));
  // Many unknown photos (or their variants) in one folder: one listing can answer them all.
  const unknown = [...distinct].flatMap(([key, cached]) => (cached === undefined ? [key] : []));
  if (lookup.prime && options.prime !== false && unknown.length > 1) {
    await lookup.prime(unknown.map(probeKey), typeof options.prime === 'object' ? options.prime : {}, options.onError);
    for (const key of unknown) distinct.set(key, lookup.peek(probeKey(key)));
  }
  const tasks = [...distinct];
  // What to show for each key whose object exists; null when it is missing or the storage failed.
  const found = new Map<string, { src: string; srcset?: string } | null>();

  const urlsOf = async (key: string): Promise<{ src: string; srcset?: string }> => {
    if (!variant) return { src: await storage.url(key, options.url) };
    const urls = await Promise.all(variant.densities.map((d) => storage.url(key, { ...options.url, variant: options.variant, density: d.density })));
    return variant.densities.length > 1 ? { src: urls[0]!, srcset: variant.densities.map((d, i) => `${urls[i]} ${d.density}x`).join(', ') } : { src: urls[0]! };
  };

  /** Whether the photo (its variant, when one is asked for) can be shown; a missing variant of a stored photo is generated. */
  const available = async (key: string, cached: boolean | undefined): Promise<boolean> => {
    const probe = probeKey(key);
    if (cached ?? (await lookup.exists(probe))) return true;
    if (probe === key || options.generateMissingVariants === false || !(await lookup.exists(key))) return false;
    try {
      await source!.ensureVariant(key, options.variant!);
    } catch (err) {
      // The photo went between the check and the generation: simply missing.
      if (!isNotFound(err)) throw err;
      lookup.learn(key, false);
      return false;
    }
    lookup.learn(probe, true);
    return true;
  };

  // The pool bounds the requests in flight (checks and URLs).
  await forEachConcurrent(tasks, concurrency, async ([key, cached]) => {
    let result: { src: string; srcset?: string } | null = null;
    try {
      if (await available(key, cached)) result = await urlsOf(key);
    } catch (err) {
      options.onError?.(err, key);
    }
    found.set(key, result);
  });

  const size = variant
    ? { ...(variant.width !== undefined ? { width: variant.width } : {}), ...(variant.height !== undefined ? { height: variant.height } : {}) }
    : {};
  return entries.map((entry, i) => {
    const fallback = defaultFor(options.default, entry);
    const key = keys[i];
    const shown = key === undefined ? null : (found.get(key) ?? null);
    if (shown === null) return { src: fallback, fallback, isDefault: true, ...(key !== undefined ? { key } : {}), ...size };
    return { src: shown.src, fallback, isDefault: false, key, ...(shown.srcset !== undefined ? { srcset: shown.srcset } : {}), ...size };
  });
}

/** {@link resolveAvatars}, giving just the URLs, in the order of `inputs`. */
export async function resolveAvatarUrls(storage: MediaStorage, inputs: readonly AvatarInput[], options: ResolveAvatarsOptions = {}): Promise<string[]> {
  return (await resolveAvatars(storage, inputs, options)).map((r) => r.src);
}
