import { defineBackend, defineOptions, lazyStorageClass, type StorageClass, type OptionsOf } from '../core/definition.js';

/** MemoryStorage's configuration options. */
export const memoryOptions = defineOptions({
  /** Base of `url()`'s URLs, the key following it; serve it with `storage.handler()`. Default `/media`. Formerly `baseUrl`. */
  publicBaseUrl: { kind: 'string', default: '/media', deprecated: ['baseUrl'], help: 'URL path the files are served under' },
  /** HMAC secret for signed URLs (16+ bytes). Default: a fixed test secret, so signed URLs work out of the box. */
  secret: { kind: 'string', secret: true, help: 'key that signs URLs (default: a fixed test key)' },
  /** `private`: the handler serves only signed URLs. Default `public`. */
  visibility: { kind: 'enum', values: ['public', 'private'], default: 'public', help: 'public or private' },
});

/** The options of MemoryStorage configuration can set. */
export type MemoryConfig = OptionsOf<typeof memoryOptions>;

/** Objects in a Map, for tests: `memory://`. */
export const memoryBackend = defineBackend({
  name: 'memory',
  title: 'objects in memory, for tests',
  schemes: ['memory'],
  options: memoryOptions,
  durability: 'process',
  retry: false,
  url: { example: 'memory://', parse: () => ({}) },
  load: (): Promise<StorageClass> => lazyStorageClass('memory', [], () => import('./index.js'), 'MemoryStorage'),
});
