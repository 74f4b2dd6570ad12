import { DEFAULT_MAX_EXPIRES_IN } from '../core/base.js';
import { defineBackend, defineOptions, lazyStorageClass, type StorageClass, type OptionsOf } from '../core/definition.js';

const MiB = 1024 * 1024;
/** Put Block List takes at most 50,000 blocks; a block is at most 4,000 MiB. */
export const MAX_BLOCK_SIZE = 4000 * MiB;
const PEERS = ['@azure/storage-blob'];

/** AzureBlobStorage's configuration options; the TSDoc here is what editors show on `AzureBlobStorageOptions`. */
export const azureOptions = defineOptions({
  /** The container's name (3 to 63 lower-case letters, digits and dashes). */
  container: { kind: 'string', required: true, query: false, env: ['AZURE_STORAGE_CONTAINER'] },
  /**
   * The storage account's connection string (`DefaultEndpointsProtocol=https;AccountName=...;
   * AccountKey=...;EndpointSuffix=core.windows.net`, or Azurite's with `BlobEndpoint=`). Default:
   * `process.env.AZURE_STORAGE_CONNECTION_STRING`. It must hold the AccountKey: signed URLs and
   * direct uploads are service SAS tokens signed with it.
   */
  connectionString: { kind: 'string', secret: true, query: false, env: ['AZURE_STORAGE_CONNECTION_STRING'] },
  /** Key prefix inside the container, e.g. `media/`. Formerly `location`. */
  prefix: { kind: 'string', deprecated: ['location'], env: ['AZURE_STORAGE_LOCATION'], help: 'key prefix inside the container (the URL path sets it too)' },
  /**
   * `private` (default): `url()` gives SAS URLs expiring after `defaultExpiresIn`. `public`: plain
   * blob URLs (the container's public access level must be `blob`).
   */
  visibility: {
    kind: 'enum',
    values: ['public', 'private'],
    default: 'private',
    env: ['AZURE_STORAGE_VISIBILITY'],
    help: 'private (default): SAS-signed URLs; public: plain URLs (a public container)',
  },
  /** Base of public URLs, e.g. a CDN (`https://cdn.example.com`); the key follows it. */
  publicBaseUrl: { kind: 'url', help: 'CDN or custom domain of public URLs' },
  /** Expiry of signed URLs, in seconds; default 3600. */
  defaultExpiresIn: { kind: 'integer', unit: 's', min: 1, max: DEFAULT_MAX_EXPIRES_IN, default: 3600, help: 'seconds a signed URL lives' },
  /**
   * Cache-Control browsers get for the blobs: stored with every blob unless `save` passes its own,
   * so a change applies to blobs written after it.
   */
  cacheControl: { kind: 'string', help: 'Cache-Control stored with every blob' },
  /** What `save` does with a taken key when its options do not say; default `overwrite`. */
  ifExists: { kind: 'enum', values: ['overwrite', 'rename', 'fail'], default: 'overwrite', help: 'overwrite (default), rename or fail' },
  /** Bodies of known length up to this many bytes go in one Put Blob; default 32 MiB. */
  singleUploadThreshold: { kind: 'integer', unit: 'bytes', min: 1, max: 5000 * MiB, default: 32 * MiB, help: 'bytes up to which a body goes in one Put Blob' },
  /** Block size of uploads in blocks (1 MiB to 4,000 MiB); default 8 MiB. Memory per streamed upload is (concurrency + 1) × blockSize. */
  blockSize: { kind: 'integer', unit: 'bytes', min: MiB, max: MAX_BLOCK_SIZE, default: 8 * MiB, help: 'bytes in each block of an upload' },
  /** Blocks sent at once; default 4. */
  concurrency: { kind: 'integer', min: 1, max: 64, default: 4, help: 'blocks sent at once (default 4)' },
});

/** The options of AzureBlobStorage configuration can set. */
export type AzureConfig = OptionsOf<typeof azureOptions>;

/** A connection string for an account name and key (Azure's public cloud, or an explicit Blob endpoint). */
function azureConnectionString(account: string, key: string, endpoint: string | undefined): string {
  return endpoint
    ? `DefaultEndpointsProtocol=${new URL(endpoint).protocol.replace(':', '')};AccountName=${account};AccountKey=${key};BlobEndpoint=${endpoint};`
    : `DefaultEndpointsProtocol=https;AccountName=${account};AccountKey=${key};EndpointSuffix=core.windows.net`;
}

/** Azure Blob Storage: `azure://container/prefix`, or AZURE_STORAGE_CONNECTION_STRING and AZURE_STORAGE_CONTAINER. */
export const azureBackend = defineBackend({
  name: 'azure',
  title: 'Azure Blob Storage',
  schemes: ['azure'],
  options: azureOptions,
  peers: PEERS,
  credentialsHint: 'the AccountKey in AZURE_STORAGE_CONNECTION_STRING',
  url: {
    example: 'azure://container/prefix',
    note: 'with AZURE_STORAGE_CONNECTION_STRING; or azure://ACCOUNT:KEY@container/prefix',
    parse: (url, { fail }) => {
      if (!url.host) fail('azure:// needs a container, e.g. azure://media/uploads');
      if ((url.user && !url.password) || (!url.user && url.password))
        fail('give both the account name and key (azure://ACCOUNT:KEY@container) or neither (then AZURE_STORAGE_CONNECTION_STRING)');
      return { container: url.host, ...(url.prefix ? { prefix: url.prefix } : {}), ...(url.user ? { account: url.user, accountKey: url.password } : {}) };
    },
    // `endpoint`: the Blob service URL when the account and key are in the URL (Azurite's
    // http://127.0.0.1:10000/devstoreaccount1, a sovereign cloud).
    query: defineOptions({ endpoint: { kind: 'url', help: 'the Blob service URL, e.g. http://127.0.0.1:10000/devstoreaccount1 (Azurite)' } }),
    finish: ({ account, accountKey, ...options }, { endpoint }, { fail }) => {
      if (endpoint !== undefined && account === undefined)
        fail('the endpoint option goes with an account and key in the URL (azure://ACCOUNT:KEY@container?endpoint=...)');
      return account === undefined
        ? options
        : { ...options, connectionString: azureConnectionString(String(account), String(accountKey), endpoint as string | undefined) };
    },
  },
  env: { require: ['container', 'connectionString'] },
  load: (): Promise<StorageClass> => lazyStorageClass('azure', PEERS, () => import('./index.js'), 'AzureBlobStorage'),
});
