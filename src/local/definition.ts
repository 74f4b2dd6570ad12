import { DEFAULT_MAX_EXPIRES_IN } from '../core/base.js';
import { defineBackend, defineOptions, lazyStorageClass, type StorageClass, typed, type OptionsOf } from '../core/definition.js';

/** LocalStorage's configuration options; the TSDoc here is what editors show on `LocalStorageOptions`. */
export const localOptions = defineOptions({
  /** Folder the files live in; created on first write. */
  root: { kind: 'string', required: true, env: ['MEDIA_ROOT'], query: false },
  /**
   * Base of the files' URLs, the key following it: a path (`/media`, the default, served by
   * `storage.handler()` under that path) or an absolute URL such as `https://cdn.example.com/media`.
   * Formerly `baseUrl`.
   */
  publicBaseUrl: {
    kind: 'string',
    default: '/media',
    deprecated: ['baseUrl'],
    env: ['MEDIA_URL'],
    help: 'URL path or origin the files are served under (default /media)',
  },
  /** `public` (default): plain URLs work. `private`: only signed URLs are served by `storage.handler()`. */
  visibility: { kind: 'enum', values: ['public', 'private'], default: 'public', help: 'public (default) or private: signed URLs only' },
  /** HMAC secret (16+ bytes) for signed URLs; required for private storage and for `url({ expiresIn })`. */
  secret: {
    kind: 'custom',
    type: typed<string | Buffer>(),
    check: (value) => (typeof value === 'string' || Buffer.isBuffer(value) ? undefined : 'must be a string or a Buffer'),
    secret: true,
    env: ['MEDIA_STORAGE_SECRET'],
    help: 'key that signs URLs',
  },
  /** Expiry of signed URLs when none is asked for, in seconds. Default 3600. */
  defaultExpiresIn: { kind: 'integer', unit: 's', min: 1, max: DEFAULT_MAX_EXPIRES_IN, default: 3600, help: 'seconds a signed URL lives' },
  /**
   * Cache-Control browsers get for public files. `storage.handler()` sends it when serving, so a
   * change applies to files stored before it (on S3 and Azure it is stored with each object
   * instead). Default `public, max-age=3600`.
   */
  cacheControl: { kind: 'string', help: 'Cache-Control the handler sends' },
  /** fsync each file before it becomes visible, for durability across power loss. Default false. */
  fsync: { kind: 'boolean', default: false, help: 'flush each file to disk before it is visible' },
  /** Warn once when used in production on an ephemeral platform (Render, Heroku, Fly, ...). Default true. */
  warnOnEphemeralDisk: { kind: 'boolean', default: true, query: false },
});

/** The options of LocalStorage configuration can set (storage URLs, the environment, `createMediaStorage`). */
export type LocalConfig = OptionsOf<typeof localOptions>;

/** The local disk: `file:///var/app/media`, `file:./media`, or MEDIA_ROOT and MEDIA_URL. */
export const localBackend = defineBackend({
  name: 'local',
  title: 'a folder on the local disk',
  schemes: ['file'],
  options: localOptions,
  durability: 'local-disk',
  retry: false,
  url: {
    example: 'file:///var/app/media, file:./media',
    // file:./media and file:media are relative paths, which the URL parser cannot hold: config reads
    // the path itself and hands it over as `path` (with its leading slashes for file:///).
    parse: (url, { fail }) => {
      if (url.host !== '' && url.host !== 'localhost') fail('file URLs name a local folder, not a host');
      if (url.pathname === '' || url.pathname === '/') fail('file: needs a folder, e.g. file:./media or file:///var/app/media');
      return { root: url.pathname };
    },
  },
  env: {
    // The local disk is what an environment without storage variables gets.
    detect: () => 'fallback',
    read: (_get, fromOptions) => ({ root: './media', publicBaseUrl: '/media', ...fromOptions }),
  },
  load: (): Promise<StorageClass> => lazyStorageClass('local', [], () => import('./index.js'), 'LocalStorage'),
});
