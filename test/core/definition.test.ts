/** Option names: deprecated aliases resolve in one place (the definition), for config and constructors alike. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createMediaStorage, parseStorageUrl } from '../../src/config/index.js';
import { resetDeprecationWarnings, resolveOptions } from '../../src/core/definition.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { S3Storage } from '../../src/s3/index.js';
import { B2Storage } from '../../src/b2/index.js';
import { AzureBlobStorage } from '../../src/azure/index.js';
import { s3Backend } from '../../src/s3/definition.js';

const AZURITE = 'DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1;';

function deprecations(spy: { mock: { calls: unknown[][] } }): string[] {
  return spy.mock.calls.filter((call) => (call[1] as { code?: string } | undefined)?.code === 'MEDIA_STORAGE_DEPRECATED').map((call) => String(call[0]));
}

describe('deprecated option names', () => {
  afterEach(() => {
    vi.restoreAllMocks();
    resetDeprecationWarnings();
  });

  it('keep working, with one MEDIA_STORAGE_DEPRECATED warning per name per process', () => {
    const warn = vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    expect(new S3Storage({ bucket: 'b', location: 'old/' }).location).toBe('old/');
    expect(new S3Storage({ bucket: 'b', location: 'again/' }).location).toBe('again/');
    expect(new S3Storage({ bucket: 'b', prefix: 'new/' }).location).toBe('new/');
    expect(new AzureBlobStorage({ container: 'media', connectionString: AZURITE, location: 'crm/' }).location).toBe('crm/');
    expect(new LocalStorage({ root: '/tmp/ms-def-test', baseUrl: '/uploads', warnOnEphemeralDisk: false }).baseUrl).toBe('/uploads');
    expect(new MemoryStorage({ baseUrl: '/m' }).baseUrl).toBe('/m');
    new B2Storage({ applicationKeyId: 'id', applicationKey: 'key', bucketName: 'b', location: 'x/', maxUploadAttempts: 2, apiUrl: 'http://127.0.0.1:1/auth' });
    expect(deprecations(warn)).toEqual([
      'media-storage: s3: the option location is deprecated; use prefix (the same meaning). location goes in the next major version.',
      expect.stringContaining('azure: the option location is deprecated; use prefix'),
      expect.stringContaining('local: the option baseUrl is deprecated; use publicBaseUrl'),
      expect.stringContaining('memory: the option baseUrl is deprecated; use publicBaseUrl'),
      expect.stringContaining('b2: the option location is deprecated; use prefix'),
      expect.stringContaining('b2: the option maxUploadAttempts is deprecated; use maxAttempts'),
      expect.stringContaining('b2: the option apiUrl is deprecated; use endpoint'),
    ]);
  });

  it('the old and the new name at once is CONFIG, from the constructor and from createMediaStorage', async () => {
    vi.spyOn(process, 'emitWarning').mockImplementation(() => undefined);
    expect(() => new S3Storage({ bucket: 'b', location: 'a/', prefix: 'b/' })).toThrow('s3: give prefix or its deprecated name location, not both');
    await expect(createMediaStorage({ backend: 's3', bucket: 'b', prefix: 'b/', location: 'a/' } as never)).rejects.toMatchObject({
      code: 'CONFIG',
      message: 's3: give prefix or its deprecated name location, not both',
    });
    expect(() => parseStorageUrl('file:./media?baseUrl=/a&publicBaseUrl=/b')).not.toThrow();
    await expect(createMediaStorage('file:./media?baseUrl=/a&publicBaseUrl=/b')).rejects.toMatchObject({
      code: 'CONFIG',
      message: 'local: give publicBaseUrl or its deprecated name baseUrl, not both',
    });
  });

  it('resolveOptions checks kinds and ranges in the messages ISSUE14 set: "backend: option ..."', () => {
    expect(() => resolveOptions(s3Backend, {})).toThrow('s3: bucket is required');
    expect(() => resolveOptions(s3Backend, { bucket: 'b', timeout: 'x' })).toThrow(
      's3: timeout must be a whole number of milliseconds of at least 1 (got "x")',
    );
    expect(() => resolveOptions(s3Backend, { bucket: 'b', visibility: 'secret' })).toThrow('s3: visibility must be "public" or "private" (got "secret")');
    expect(() => resolveOptions(s3Backend, { bucket: 'b', credentials: { accessKeyId: 1 } })).toThrow('s3: credentials.accessKeyId must be a string (got 1)');
    expect(() => parseStorageUrl('s3://b?timeout=0')).toThrow('storage URL option timeout must be a whole number of milliseconds of at least 1 (got "0")');
  });

  it("S3's timeout is the SDK's socket timeout", async () => {
    const storage = new S3Storage({ bucket: 'b', endpoint: 'http://127.0.0.1:1', timeout: 1234 });
    const handler = storage.client.config.requestHandler as unknown as {
      configProvider?: Promise<{ socketTimeout?: number }>;
      config?: { socketTimeout?: number };
    };
    const config = handler.configProvider ? await handler.configProvider : handler.config;
    expect(config?.socketTimeout).toBe(1234);
  });
});
