import type { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BaseStorage, type WriteOptions } from '../../src/core/base.js';
import { streamToBuffer, type PreparedBody } from '../../src/core/body.js';
import type { ErrorMapping } from '../../src/core/error-mapping.js';
import type { Capabilities, ListPage, ObjectInfo, UrlOptions } from '../../src/core/types.js';

/** A driver over a Map that records every driver call, to see what the base does before and around it. */
class RecordingStorage extends BaseStorage {
  readonly name = 'recording';
  readonly capabilities: Readonly<Capabilities>;
  readonly calls: string[] = [];
  readonly objects = new Map<string, Buffer>();
  failWith: unknown;

  constructor(atomicCreate: boolean) {
    super();
    this.capabilities = {
      publicUrls: true,
      signedUrls: false,
      downloadUrls: false,
      rangeReads: false,
      serverSideCopy: false,
      metadata: false,
      atomicCreate,
      md5Etag: false,
      directUploads: false,
    };
  }

  private info(key: string): ObjectInfo {
    return { key, size: this.objects.get(key)!.length, contentType: 'text/plain' };
  }

  protected async writeObject(key: string, body: PreparedBody, options: WriteOptions): Promise<ObjectInfo> {
    this.calls.push(`write ${key} ${options.ifExists}`);
    if (this.failWith) throw this.failWith;
    this.objects.set(key, await streamToBuffer(body.stream()));
    return this.info(key);
  }
  protected async readObject(): Promise<Readable> {
    throw new Error('unused');
  }
  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    this.calls.push(`stat ${key}`);
    return this.objects.has(key) ? this.info(key) : undefined;
  }
  protected async deleteObject(key: string): Promise<void> {
    this.objects.delete(key);
  }
  protected async listObjects(): Promise<ListPage> {
    return { items: [] };
  }
  protected async objectUrl(key: string, _options: UrlOptions): Promise<string> {
    return `/m/${key}`;
  }
  protected override mapError(err: unknown): ErrorMapping | undefined {
    return (err as { status?: number }).status === 503 ? { code: 'UNAVAILABLE', status: 503, retryAfter: new Date(0) } : undefined;
  }
  protected override secrets(): readonly string[] {
    return ['hunter2-secret'];
  }
}

describe('core/base: BaseStorage', () => {
  it("check-then-write: without atomic create, ifExists 'fail' is refused before the driver writes", async () => {
    const s = new RecordingStorage(false);
    await s.save('a.txt', 'one');
    s.calls.length = 0;
    await expect(s.save('a.txt', 'two', { ifExists: 'fail' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS', key: 'a.txt', backend: 'recording' });
    expect(s.calls).toEqual(['stat a.txt']);
    expect(s.objects.get('a.txt')!.toString()).toBe('one');
    await s.save('b.txt', 'new', { ifExists: 'fail' });
    expect(s.calls).toEqual(['stat a.txt', 'stat b.txt', 'write b.txt fail']);
  });

  it('with atomic create the store decides: no check first', async () => {
    const s = new RecordingStorage(true);
    await s.save('a.txt', 'x', { ifExists: 'fail' });
    expect(s.calls).toEqual(['write a.txt fail']);
  });

  it("copy with ifExists 'fail' checks the target on every backend", async () => {
    const s = new RecordingStorage(true);
    await s.save('a.txt', 'one');
    await s.save('b.txt', 'two');
    await expect(s.copy('a.txt', 'b.txt', { ifExists: 'fail' })).rejects.toMatchObject({ code: 'ALREADY_EXISTS', key: 'b.txt' });
    expect(s.objects.get('b.txt')!.toString()).toBe('two');
  });

  it('validates keys before any driver call', async () => {
    const s = new RecordingStorage(false);
    await expect(s.save('../etc/passwd', 'x')).rejects.toMatchObject({ code: 'INVALID_KEY' });
    await expect(s.save('a.txt', 'x', { ifExists: 'sometimes' as 'fail' })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    expect(s.calls).toEqual([]);
  });

  it("wraps driver failures through the backend's ErrorMapping, with context, and redacts its secrets", async () => {
    const s = new RecordingStorage(false);
    s.failWith = Object.assign(new Error('503 from upstream, auth=hunter2-secret'), { status: 503 });
    const err = await s.save('a.txt', 'x').catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'UNAVAILABLE', status: 503, backend: 'recording', operation: 'save', key: 'a.txt' });
    expect((err as Error).message).not.toContain('hunter2-secret');
    s.failWith = Object.assign(new Error('socket'), { code: 'ECONNRESET' });
    await expect(s.save('a.txt', 'x')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    s.failWith = new Error('odd');
    await expect(s.save('a.txt', 'x')).rejects.toMatchObject({ code: 'UNKNOWN' });
  });
});
