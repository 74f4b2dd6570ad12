/**
 * A third-party backend (test/fixtures/kv-backend, written as a plugin author would) registered
 * with registerBackend, then used through every path configuration has: createMediaStorage,
 * MEDIA_STORAGE_URL, createMediaStorageFromEnv and the CLI, and run through the contract suite.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { main } from '../../src/cli/index.js';
import { configFromEnv, createMediaStorage, createMediaStorageFromEnv, describeConfig, maskUrl, parseStorageUrl } from '../../src/index.js';
import { registerBackend, backendDefinition, defineBackend } from '../../src/core/definition.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { findEnvTypos } from '../../src/config/index.js';
import { kvBackend } from '../support/fixtures/kv-backend/definition.js';

declare module '../../src/config/index.js' {
  interface StorageBackendOptions {
    kv: import('../support/fixtures/kv-backend/definition.js').KvConfig;
  }
}

registerBackend(kvBackend);

function capture(env: NodeJS.ProcessEnv = {}) {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, stdin: (async function* () {})(), env },
    out: () => out,
    err: () => err,
  };
}

describe('a registered plugin backend', () => {
  it('registering it again does nothing; another definition under its name or scheme is CONFIG', () => {
    expect(registerBackend(kvBackend)).toBe(kvBackend);
    expect(backendDefinition('kv')).toBe(kvBackend);
    expect(() => registerBackend(defineBackend({ ...kvBackend }))).toThrow(/a backend named "kv" is registered already/);
    expect(() => registerBackend(defineBackend({ ...kvBackend, name: 'kv2' }))).toThrow(/the URL scheme "kv:" belongs to kv/);
    expect(() => registerBackend(defineBackend({ ...kvBackend, name: 'files', schemes: ['file'] }))).toThrow(/belongs to local/);
  });

  it('works with createMediaStorage, its options checked by its definition', async () => {
    const bucket = randomUUID();
    const storage = await createMediaStorage({ backend: 'kv', bucket, prefix: 'media/' });
    expect(storage.name).toBe('kv');
    await storage.save('people/1.txt', 'hello', { contentType: 'text/plain' });
    expect((await storage.readBuffer('people/1.txt')).toString()).toBe('hello');
    await expect(createMediaStorage({ backend: 'kv' } as never)).rejects.toMatchObject({ code: 'CONFIG', message: 'kv: bucket is required' });
    await expect(createMediaStorage({ backend: 'kv', bucket, failFirst: -1 })).rejects.toMatchObject({
      code: 'CONFIG',
      message: 'kv: failFirst must be a whole number of at least 0 (got -1)',
    });
  });

  it('works with MEDIA_STORAGE_URL and parseStorageUrl: its scheme, user info, path and ?options', async () => {
    const bucket = randomUUID();
    expect(parseStorageUrl(`kv://tok3n@${bucket}/media?failFirst=0`)).toEqual({ backend: 'kv', bucket, prefix: 'media/', token: 'tok3n', failFirst: 0 });
    expect(() => parseStorageUrl(`kv://${bucket}?colour=blue`)).toThrow(/unknown option "colour" for kv \(known: prefix, token, failFirst\)/);
    const writer = await createMediaStorage({ backend: 'kv', bucket, prefix: 'media/' });
    await writer.save('a.txt', 'from the app');
    const viaUrl = await createMediaStorageFromEnv({ MEDIA_STORAGE_URL: `kv://${bucket}/media` });
    expect((await viaUrl.readBuffer('a.txt')).toString()).toBe('from the app');
  });

  it('works with createMediaStorageFromEnv through its own variables, and they are not typos', async () => {
    const bucket = randomUUID();
    const env = { KV_BUCKET: bucket, KV_TOKEN: 'sekret-token' };
    expect(configFromEnv(env, { warn: false })).toEqual({ backend: 'kv', bucket, token: 'sekret-token' });
    expect(findEnvTypos({ ...env, KV_BUCKETS: 'x' }).map((t) => t.name)).toEqual([]);
    const storage = await createMediaStorageFromEnv(env);
    await storage.save('x.txt', 'x');
    expect(await storage.exists('x.txt')).toBe(true);
  });

  it('masks its secrets by its definition', () => {
    expect(describeConfig({ backend: 'kv', bucket: 'b', token: 'sekret-token' })).toEqual({ backend: 'kv', bucket: 'b', token: '***' });
    expect(maskUrl('kv://sekret-token@b/media?token=sekret-token')).not.toContain('sekret');
  });

  it('works with the CLI, loaded with --require or MEDIA_STORAGE_PLUGINS, and its help shows the scheme', async () => {
    const bucket = randomUUID();
    const source = await createMediaStorage({ backend: 'kv', bucket });
    await source.save('photos/1.jpg', Buffer.from([0xff, 0xd8, 0xff, 0xe0]));
    const run = capture();
    expect(
      await main(
        ['--require', './test/support/fixtures/kv-backend/definition.ts', 'sync', '--from', `kv://${bucket}`, '--to', `kv://${bucket}-copy`, '--quiet'],
        run.io,
      ),
    ).toBe(0);
    expect(run.out()).toContain('1 objects: 1 copied');
    expect(await (await createMediaStorage({ backend: 'kv', bucket: `${bucket}-copy` })).exists('photos/1.jpg')).toBe(true);
    const viaEnv = capture({ MEDIA_STORAGE_PLUGINS: './test/support/fixtures/kv-backend/definition.ts' });
    expect(await main(['--help'], viaEnv.io)).toBe(0);
    expect(viaEnv.out()).toContain('kv://TOKEN@bucket/prefix');
    expect(viaEnv.out()).toMatch(/\n {6}failFirst +the first N calls/);
    const missing = capture();
    expect(await main(['--require', './no/such/plugin.js', 'doctor'], missing.io)).toBe(2);
    expect(missing.err()).toContain('the plugin "./no/such/plugin.js" could not be loaded');
  });
});

describe('the default stack retries', () => {
  it('a flaky backend succeeds through createMediaStorage; with retry: false it does not', async () => {
    const flaky = await createMediaStorage({ backend: 'kv', bucket: randomUUID(), failFirst: 2 });
    await flaky.save('a.txt', 'x');
    expect((await flaky.readBuffer('a.txt')).toString()).toBe('x');
    const bare = await createMediaStorage({ backend: 'kv', bucket: randomUUID(), failFirst: 1 }, { retry: false });
    await expect(bare.save('a.txt', 'x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    const retries: number[] = [];
    const counted = await createMediaStorageFromEnv(
      { MEDIA_STORAGE_URL: `kv://${randomUUID()}?failFirst=3` },
      { retry: { maxAttempts: 3, baseDelayMs: 1, onRetry: (i) => retries.push(i.attempt) } },
    );
    await expect(counted.save('a.txt', 'x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    expect(retries).toEqual([1, 2]);
  });
  it('local and memory come bare (no network; their handler() stays reachable)', async () => {
    const { MemoryStorage } = await import('../../src/memory/index.js');
    expect(await createMediaStorage('memory://')).toBeInstanceOf(MemoryStorage);
  });
});

describeStorageContract('kv plugin through createMediaStorage', async () => ({
  storage: await createMediaStorage({ backend: 'kv', bucket: randomUUID(), prefix: 'contract/' }),
}));
