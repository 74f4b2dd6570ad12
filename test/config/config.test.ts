import { describe, expect, it } from 'vitest';
import { configFromEnv, createMediaStorage, createMediaStorageFromEnv, describeConfig, maskUrl, parseStorageUrl } from '../../src/config/index.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { lazyStorageClass } from '../../src/core/definition.js';
import { b2Backend } from '../../src/b2/definition.js';
import { azureBackend } from '../../src/azure/definition.js';

function configError(fn: () => unknown): { code: string; message: string } {
  try {
    fn();
  } catch (err) {
    return err as { code: string; message: string };
  }
  throw new Error('expected a CONFIG error');
}

describe('storage URLs', () => {
  it('file: absolute and relative, with options', () => {
    expect(parseStorageUrl('file:///var/app/media?publicBaseUrl=/media')).toEqual({ backend: 'local', root: '/var/app/media', publicBaseUrl: '/media' });
    expect(parseStorageUrl('file:./media?visibility=private&secret=0123456789abcdef')).toEqual({
      backend: 'local',
      root: './media',
      visibility: 'private',
      secret: '0123456789abcdef',
    });
  });
  it('s3: bucket, prefix, region, endpoint and credentials', () => {
    expect(parseStorageUrl('s3://my-bucket/media/?region=eu-central-1&endpoint=http://127.0.0.1:9000&forcePathStyle=true')).toEqual({
      backend: 's3',
      bucket: 'my-bucket',
      prefix: 'media/',
      region: 'eu-central-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
    });
    expect(parseStorageUrl('s3://AKIA1234:s%2Fcret@bkt?acl=none&visibility=public')).toEqual({
      backend: 's3',
      bucket: 'bkt',
      credentials: { accessKeyId: 'AKIA1234', secretAccessKey: 's/cret' },
      acl: false,
      visibility: 'public',
    });
  });
  it('cloudinary:, b2: and memory:', () => {
    expect(parseStorageUrl('cloudinary://123456:abcdef@demo?prefix=avatars')).toEqual({
      backend: 'cloudinary',
      cloudName: 'demo',
      apiKey: '123456',
      apiSecret: 'abcdef',
      prefix: 'avatars',
    });
    expect(parseStorageUrl('b2://keyid:appkey@photos/crm')).toEqual({
      backend: 'b2',
      bucketName: 'photos',
      applicationKeyId: 'keyid',
      applicationKey: 'appkey',
      prefix: 'crm/',
    });
    expect(parseStorageUrl('memory://')).toEqual({ backend: 'memory' });
    expect(parseStorageUrl('cloudinary://1:2@demo?upload_prefix=https://api-eu.cloudinary.com&private_cdn=true')).toEqual({
      backend: 'cloudinary',
      cloudName: 'demo',
      apiKey: '1',
      apiSecret: '2',
      endpoint: 'https://api-eu.cloudinary.com',
      privateCdn: true,
    });
  });
  it('reads a CLOUDINARY_URL as the backend does: every SDK parameter and a private CDN path, with one parser', () => {
    const url = 'cloudinary://1:2@demo/cdn.example.com?signature_algorithm=sha256&secure_distribution=img.example.com&prefix=crm';
    expect(configFromEnv({ CLOUDINARY_URL: url })).toEqual({
      backend: 'cloudinary',
      cloudName: 'demo',
      apiKey: '1',
      apiSecret: '2',
      signatureAlgorithm: 'sha256',
      privateCdn: true,
      secureDistribution: 'img.example.com',
      prefix: 'crm',
    });
    expect(parseStorageUrl('cloudinary://1:2@demo/cdn.example.com')).toMatchObject({ privateCdn: true, secureDistribution: 'cdn.example.com' });
    expect(() => parseStorageUrl('cloudinary://1:2@demo?signature_algorithm=md5')).toThrow(/signature_algorithm must be sha1 or sha256/);
    expect(() => parseStorageUrl('cloudinary://1:2@demo?private_cdn=yes')).toThrow(/private_cdn must be true or false/);
    expect(() => parseStorageUrl('cloudinary://1:2@demo?colour=blue')).toThrow(/unknown option "colour"/);
  });
  it.each([
    ['', /is empty/],
    ['just-a-path', /must start with a scheme/],
    ['ftp://host/x', /unknown scheme "ftp:"/],
    ['s3:///prefix', /needs a bucket/],
    ['s3://KEYONLY@bucket', /both the access key id and the secret/],
    ['cloudinary://demo', /API_KEY:API_SECRET@CLOUD_NAME/],
    ['b2://bucket', /application key id and key/],
    ['s3://bucket?colour=blue', /unknown option "colour"/],
    ['s3://bucket?forcePathStyle=maybe', /must be true or false/],
    ['file:', /needs a folder/],
    ['s3://[bad', /not a valid URL/],
  ])('rejects %j', (url, message) => {
    const err = configError(() => parseStorageUrl(url, 'MEDIA_STORAGE_URL'));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toMatch(message);
  });
  it('never echoes a secret from a malformed URL', () => {
    const err = configError(() => parseStorageUrl('s3://AKIAEXAMPLE:sup3rs3cr3t@[bad', 'MEDIA_STORAGE_URL'));
    expect(err.message).not.toContain('sup3rs3cr3t');
    expect(maskUrl('b2://keyid123:topsecret@bucket')).toBe('b2://keyi***:***@bucket');
  });
});

describe('configFromEnv', () => {
  it('defaults to the local disk', () => {
    expect(configFromEnv({})).toEqual({ backend: 'local', root: './media', publicBaseUrl: '/media' });
    expect(configFromEnv({ MEDIA_ROOT: '/data/media', MEDIA_URL: '/uploads' })).toEqual({ backend: 'local', root: '/data/media', publicBaseUrl: '/uploads' });
  });
  it('MEDIA_STORAGE_URL wins', () => {
    expect(configFromEnv({ MEDIA_STORAGE_URL: 'memory://', AWS_STORAGE_BUCKET_NAME: 'x' })).toEqual({ backend: 'memory' });
  });
  it('reads the django-storages AWS_* settings', () => {
    expect(
      configFromEnv({
        AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE',
        AWS_SECRET_ACCESS_KEY: 'secret',
        AWS_STORAGE_BUCKET_NAME: 'crm-media',
        AWS_S3_CUSTOM_DOMAIN: 'crm-media.s3.amazonaws.com',
        AWS_LOCATION: 'media',
        AWS_QUERYSTRING_AUTH: 'False',
        AWS_DEFAULT_ACL: 'public-read',
      }),
    ).toEqual({
      backend: 's3',
      bucket: 'crm-media',
      region: 'eu-central-1',
      credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' },
      prefix: 'media',
      publicBaseUrl: 'https://crm-media.s3.amazonaws.com',
      visibility: 'public',
      acl: 'public-read',
    });
    expect(configFromEnv({ AWS_STORAGE_BUCKET_NAME: 'b', AWS_S3_REGION_NAME: 'us-east-1', AWS_S3_ENDPOINT_URL: 'http://127.0.0.1:9000' })).toMatchObject({
      backend: 's3',
      region: 'us-east-1',
      endpoint: 'http://127.0.0.1:9000',
      forcePathStyle: true,
      visibility: 'private',
      acl: false,
    });
  });
  describe('as django-storages 1.13 reads the AWS_* settings (checked against it in test/s3/django-interop.test.ts)', () => {
    const bucket = { AWS_STORAGE_BUCKET_NAME: 'crm-media' };
    it('region: AWS_S3_REGION_NAME, then AWS_REGION, then AWS_DEFAULT_REGION, then eu-central-1', () => {
      expect(configFromEnv({ ...bucket, AWS_S3_REGION_NAME: 'eu-west-1', AWS_REGION: 'us-west-2', AWS_DEFAULT_REGION: 'ap-south-1' })).toMatchObject({
        region: 'eu-west-1',
      });
      expect(configFromEnv({ ...bucket, AWS_REGION: 'us-west-2', AWS_DEFAULT_REGION: 'ap-south-1' })).toMatchObject({ region: 'us-west-2' });
      expect(configFromEnv({ ...bucket, AWS_DEFAULT_REGION: 'ap-south-1' })).toMatchObject({ region: 'ap-south-1' });
      expect(configFromEnv(bucket)).toMatchObject({ region: 'eu-central-1' });
    });
    it("credentials: django-storages' AWS_S3_* names first, each on its own; AWS_SESSION_TOKEN, then AWS_SECURITY_TOKEN", () => {
      expect(
        configFromEnv({
          ...bucket,
          AWS_S3_ACCESS_KEY_ID: 'AKIAS3',
          AWS_ACCESS_KEY_ID: 'AKIAPLAIN',
          AWS_S3_SECRET_ACCESS_KEY: 's3-secret',
          AWS_SECRET_ACCESS_KEY: 'plain-secret',
        }),
      ).toMatchObject({
        credentials: { accessKeyId: 'AKIAS3', secretAccessKey: 's3-secret' },
      });
      expect(
        configFromEnv({ ...bucket, AWS_ACCESS_KEY_ID: 'AKIAPLAIN', AWS_S3_SECRET_ACCESS_KEY: 's3-secret', AWS_SECURITY_TOKEN: 'old-token' }),
      ).toMatchObject({
        credentials: { accessKeyId: 'AKIAPLAIN', secretAccessKey: 's3-secret', sessionToken: 'old-token' },
      });
      expect(
        configFromEnv({ ...bucket, AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 'x', AWS_SESSION_TOKEN: 'new', AWS_SECURITY_TOKEN: 'old' }),
      ).toMatchObject({ credentials: { sessionToken: 'new' } });
      // The aliases alone say S3 was meant.
      expect(configError(() => configFromEnv({ AWS_S3_ACCESS_KEY_ID: 'AKIA', AWS_S3_SECRET_ACCESS_KEY: 'shh-secret' })).message).toContain(
        'AWS_STORAGE_BUCKET_NAME is not set (AWS_S3_ACCESS_KEY_ID is',
      );
    });
    it('AWS_S3_CUSTOM_DOMAIN gives plain URLs on the domain whatever AWS_QUERYSTRING_AUTH says, with AWS_S3_URL_PROTOCOL', () => {
      for (const auth of [undefined, 'True', 'False']) {
        expect(configFromEnv({ ...bucket, AWS_S3_CUSTOM_DOMAIN: 'cdn.example.com', ...(auth ? { AWS_QUERYSTRING_AUTH: auth } : {}) })).toMatchObject({
          publicBaseUrl: 'https://cdn.example.com',
          visibility: 'public',
          acl: false,
        });
      }
      expect(configFromEnv({ ...bucket, AWS_S3_CUSTOM_DOMAIN: 'cdn.example.com', AWS_S3_URL_PROTOCOL: 'http:' })).toMatchObject({
        publicBaseUrl: 'http://cdn.example.com',
      });
      expect(configFromEnv({ ...bucket, AWS_S3_CUSTOM_DOMAIN: 'cdn.example.com', AWS_S3_URL_PROTOCOL: 'http' })).toMatchObject({
        publicBaseUrl: 'http://cdn.example.com',
      });
      expect(configFromEnv(bucket)).toMatchObject({ visibility: 'private' });
    });
    it('AWS_DEFAULT_ACL is sent with signed URLs too; AWS_S3_FILE_OVERWRITE=False renames; AWS_S3_ADDRESSING_STYLE', () => {
      expect(configFromEnv({ ...bucket, AWS_DEFAULT_ACL: 'public-read' })).toMatchObject({ visibility: 'private', acl: 'public-read' });
      expect(configFromEnv({ ...bucket, AWS_DEFAULT_ACL: 'None' })).toMatchObject({ acl: false });
      expect(configFromEnv({ ...bucket, AWS_S3_FILE_OVERWRITE: 'False' })).toMatchObject({ ifExists: 'rename' });
      expect(configFromEnv({ ...bucket, AWS_S3_FILE_OVERWRITE: 'True' })).not.toHaveProperty('ifExists');
      expect(configFromEnv({ ...bucket, AWS_S3_ENDPOINT_URL: 'https://s3.example.test' })).toMatchObject({ forcePathStyle: true });
      expect(configFromEnv({ ...bucket, AWS_S3_ENDPOINT_URL: 'https://s3.example.test', AWS_S3_ADDRESSING_STYLE: 'virtual' })).toMatchObject({
        forcePathStyle: false,
      });
      expect(configFromEnv({ ...bucket, AWS_S3_ADDRESSING_STYLE: 'path' })).toMatchObject({ forcePathStyle: true });
      expect(configFromEnv({ ...bucket, AWS_S3_ADDRESSING_STYLE: 'auto' })).not.toHaveProperty('forcePathStyle');
      expect(configFromEnv({ ...bucket, AWS_S3_SIGNATURE_VERSION: 's3v4' })).toMatchObject({ backend: 's3' });
    });
    it.each([
      [{ AWS_S3_SESSION_PROFILE: 'prod' }, 'AWS_S3_SESSION_PROFILE is not supported: set AWS_PROFILE'],
      [{ AWS_S3_CUSTOM_DOMAIN: 'd1234.cloudfront.net', AWS_CLOUDFRONT_KEY_ID: 'K123' }, 'signed CloudFront URLs are not supported'],
      [{ AWS_S3_URL_PROTOCOL: 'ftp:' }, 'AWS_S3_URL_PROTOCOL must be'],
      [{ AWS_S3_ADDRESSING_STYLE: 'dns' }, 'AWS_S3_ADDRESSING_STYLE must be'],
      [{ AWS_S3_SIGNATURE_VERSION: 's3v5' }, 'AWS_S3_SIGNATURE_VERSION must be "s3v4"'],
      [{ AWS_S3_FILE_OVERWRITE: 'sometimes' }, 'AWS_S3_FILE_OVERWRITE must be true or false'],
      [{ AWS_S3_ACCESS_KEY_ID: 'AKIA' }, "AWS_SECRET_ACCESS_KEY is not set (AWS_S3_ACCESS_KEY_ID is; django-storages' AWS_S3_SECRET_ACCESS_KEY works too)"],
    ])('refuses what it cannot honour: %j', (extra, message) => {
      const err = configError(() => configFromEnv({ ...bucket, ...extra }));
      expect(err.code).toBe('CONFIG');
      expect(err.message).toContain(message);
    });
    it('a CloudFront key with plain URLs (AWS_QUERYSTRING_AUTH=False) is not used by django-storages either: accepted', () => {
      expect(
        configFromEnv({ ...bucket, AWS_S3_CUSTOM_DOMAIN: 'd1234.cloudfront.net', AWS_CLOUDFRONT_KEY_ID: 'K123', AWS_QUERYSTRING_AUTH: 'False' }),
      ).toMatchObject({ visibility: 'public' });
    });
  });
  it('reads CLOUDINARY_URL and B2_*', () => {
    expect(configFromEnv({ CLOUDINARY_URL: 'cloudinary://1:2@demo' })).toEqual({ backend: 'cloudinary', cloudName: 'demo', apiKey: '1', apiSecret: '2' });
    expect(configFromEnv({ B2_APPLICATION_KEY_ID: 'id', B2_APPLICATION_KEY: 'key', B2_BUCKET_NAME: 'bkt' })).toEqual({
      backend: 'b2',
      bucketName: 'bkt',
      applicationKeyId: 'id',
      applicationKey: 'key',
    });
  });
  it.each([
    [{ AWS_ACCESS_KEY_ID: 'AKIA', AWS_SECRET_ACCESS_KEY: 'shh-secret' }, 'AWS_STORAGE_BUCKET_NAME is not set'],
    [{ AWS_STORAGE_BUCKET_NAME: 'b', AWS_ACCESS_KEY_ID: 'AKIA' }, 'AWS_SECRET_ACCESS_KEY is not set'],
    [{ AWS_STORAGE_BUCKET_NAME: 'b', AWS_SECRET_ACCESS_KEY: 'shh-secret' }, 'AWS_ACCESS_KEY_ID is not set'],
    [{ AWS_STORAGE_BUCKET_NAME: 'b', AWS_QUERYSTRING_AUTH: 'perhaps' }, 'AWS_QUERYSTRING_AUTH must be true or false'],
    [
      { AWS_STORAGE_BUCKET_NAME: 'b', AWS_S3_ENDPOINT_URL: 'minio:9000' },
      'AWS_S3_ENDPOINT_URL must be an http:// or https:// URL (got "minio:9000"): add the scheme, e.g. http://minio:9000',
    ],
    [{ CLOUDINARY_URL: 'https://shh-secret@example.com' }, 'CLOUDINARY_URL must look like'],
    [{ B2_APPLICATION_KEY_ID: 'id', B2_APPLICATION_KEY: 'shh-secret' }, 'B2_BUCKET_NAME is not set'],
    [{ MEDIA_STORAGE_URL: 'gopher://x' }, 'MEDIA_STORAGE_URL: unknown scheme'],
  ])('names the variable: %j', (env, message) => {
    const err = configError(() => configFromEnv(env as NodeJS.ProcessEnv));
    expect(err.code).toBe('CONFIG');
    expect(err.message).toContain(message);
    expect(err.message).not.toContain('shh-secret');
  });
});

describe('createMediaStorage', () => {
  it('creates local and memory storages from config and URLs', async () => {
    expect(await createMediaStorage('memory://')).toBeInstanceOf(MemoryStorage);
    expect(await createMediaStorageFromEnv({ MEDIA_ROOT: '/tmp/media-storage-config-test' })).toBeInstanceOf(LocalStorage);
  });
  it('creates a Cloudinary storage from CLOUDINARY_URL, loading its SDK only then', async () => {
    const { CloudinaryStorage } = await import('../../src/cloudinary/index.js');
    const storage = await createMediaStorageFromEnv({ CLOUDINARY_URL: 'cloudinary://123:abc@demo' }, { retry: false });
    expect(storage).toBeInstanceOf(CloudinaryStorage);
    expect(storage.name).toBe('cloudinary');
  });
  it('creates an S3 storage from the django-storages variables', async () => {
    const { S3Storage } = await import('../../src/s3/index.js');
    const storage = await createMediaStorageFromEnv(
      { AWS_ACCESS_KEY_ID: 'AKIAEXAMPLE', AWS_SECRET_ACCESS_KEY: 'secret', AWS_STORAGE_BUCKET_NAME: 'crm-media' },
      { retry: false },
    );
    expect(storage).toBeInstanceOf(S3Storage);
    expect(storage.capabilities.publicUrls).toBe(false); // AWS_QUERYSTRING_AUTH defaults to signed URLs
  });
  it('creates a B2 storage from B2_* variables', async () => {
    const { B2Storage } = await import('../../src/b2/index.js');
    const storage = await createMediaStorageFromEnv({ B2_APPLICATION_KEY_ID: 'id', B2_APPLICATION_KEY: 'key', B2_BUCKET_NAME: 'photos' }, { retry: false });
    expect(storage).toBeInstanceOf(B2Storage);
  });
  it('says which package to install when a backend SDK is missing', async () => {
    const missing = Object.assign(new Error("Cannot find package 'backblaze-b2' imported from /app/node_modules/media-storage/dist/b2/index.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const err = await createMediaStorage('b2://id:key@bucket', {
      loaders: { b2: () => lazyStorageClass('b2', b2Backend.peers!, () => Promise.reject(missing), 'B2Storage') },
    }).catch((e: { code: string; message: string }) => e);
    expect(err).toMatchObject({ code: 'CONFIG' });
    expect((err as { message: string }).message).toBe('The b2 backend needs the package "backblaze-b2", which is not installed: npm install backblaze-b2');
  });
  it('describeConfig masks secrets and key ids', () => {
    const shown = describeConfig({ backend: 's3', bucket: 'b', credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'wJalrXUtnFEMI' } });
    expect(JSON.stringify(shown)).not.toContain('wJalrXUtnFEMI');
    expect(shown).toEqual({ backend: 's3', bucket: 'b', credentials: { accessKeyId: 'AKIA***', secretAccessKey: '***' } });
  });
});

describe('Azure Blob Storage configuration', () => {
  it('azure://container/prefix takes the connection string from the environment; azure://ACCOUNT:KEY@container builds one', () => {
    expect(parseStorageUrl('azure://media/crm?visibility=public')).toEqual({ backend: 'azure', container: 'media', prefix: 'crm/', visibility: 'public' });
    expect(parseStorageUrl('azure://acct:a2V5Kw%3D%3D@media')).toEqual({
      backend: 'azure',
      container: 'media',
      connectionString: 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=a2V5Kw==;EndpointSuffix=core.windows.net',
    });
    expect(parseStorageUrl('azure://devstoreaccount1:KEY@media?endpoint=http://127.0.0.1:10000/devstoreaccount1')).toMatchObject({
      connectionString: 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=KEY;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;',
    });
  });

  it.each([
    ['azure://', /needs a container/],
    ['azure://acct@media', /both the account name and key/],
    ['azure://media?endpoint=http://x', /goes with an account and key/],
    ['azure://a:k@media?endpoint=ftp://x', /endpoint must be an http:\/\/ or https:\/\/ URL/],
    ['azure://media?region=x', /unknown option "region"/],
  ])('%s is CONFIG', (url, message) => {
    expect(() => parseStorageUrl(url)).toThrow(message);
  });

  it('reads AZURE_STORAGE_CONNECTION_STRING with AZURE_STORAGE_CONTAINER, and names the one missing', () => {
    const connectionString = 'DefaultEndpointsProtocol=https;AccountName=acct;AccountKey=c2VjcmV0;EndpointSuffix=core.windows.net';
    expect(configFromEnv({ AZURE_STORAGE_CONNECTION_STRING: connectionString, AZURE_STORAGE_CONTAINER: 'media', AZURE_STORAGE_LOCATION: 'crm/' })).toEqual({
      backend: 'azure',
      container: 'media',
      connectionString,
      prefix: 'crm/',
    });
    expect(() => configFromEnv({ AZURE_STORAGE_CONNECTION_STRING: connectionString })).toThrow(/AZURE_STORAGE_CONTAINER is not set/);
    expect(() => configFromEnv({ AZURE_STORAGE_CONTAINER: 'media' })).toThrow(/AZURE_STORAGE_CONNECTION_STRING is not set/);
  });

  it('describeConfig masks the connection string whole; maskUrl the key in a URL', () => {
    const described = describeConfig({ backend: 'azure', container: 'media', connectionString: 'AccountName=acct;AccountKey=c2VjcmV0' });
    expect(described).toEqual({ backend: 'azure', container: 'media', connectionString: '***' });
    expect(maskUrl('azure://acct1234:c2VjcmV0@media')).toBe('azure://acct***:***@media');
  });

  it('createMediaStorage loads AzureBlobStorage, and says which package to install when it is missing', async () => {
    const { AzureBlobStorage } = await import('../../src/azure/index.js');
    const storage = await createMediaStorage(
      {
        backend: 'azure',
        container: 'media',
        connectionString: 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;',
      },
      { retry: false },
    );
    expect(storage).toBeInstanceOf(AzureBlobStorage);
    const missing = Object.assign(new Error("Cannot find package '@azure/storage-blob' imported from /app/node_modules/media-storage/dist/azure/index.js"), {
      code: 'ERR_MODULE_NOT_FOUND',
    });
    const err = await createMediaStorage('azure://media', {
      loaders: { azure: () => lazyStorageClass('azure', azureBackend.peers!, () => Promise.reject(missing), 'AzureBlobStorage') },
    }).catch((e: { message: string }) => e);
    expect((err as { message: string }).message).toBe(
      'The azure backend needs the package "@azure/storage-blob", which is not installed: npm install @azure/storage-blob',
    );
  });
});
