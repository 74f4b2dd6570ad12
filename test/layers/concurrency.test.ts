import { describe, expect, it } from 'vitest';
import type { MediaStorageError } from '../../src/core/errors.js';
import { StorageLayer, withConcurrencyLimit, type NextCall, type OperationCall } from '../../src/layers/index.js';
import { MemoryStorage } from '../../src/memory/index.js';

/** Holds every call until the test opens the gate for it; counts how many are inside at once. */
class Gate extends StorageLayer {
  inside = 0;
  most = 0;
  started = 0;
  private readonly waiting: Array<() => void> = [];

  protected override async intercept<T>(_call: OperationCall, next: NextCall<T>): Promise<T> {
    this.started++;
    this.inside++;
    this.most = Math.max(this.most, this.inside);
    await new Promise<void>((resolve) => this.waiting.push(resolve));
    try {
      return await next();
    } finally {
      this.inside--;
    }
  }

  openOne(): void {
    this.waiting.shift()?.();
  }
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('withConcurrencyLimit', () => {
  it('lets at most `limit` calls in at once, and the rest in as others finish', async () => {
    const gate = new Gate(new MemoryStorage());
    const storage = withConcurrencyLimit(gate, { limit: 3 });
    const calls = Array.from({ length: 10 }, (_, i) => storage.exists(`k${i}.txt`));
    await tick();
    expect(gate.started).toBe(3);
    gate.openOne();
    await tick();
    await tick();
    expect(gate.started).toBe(4);
    for (let i = 0; i < 10; i++) {
      gate.openOne();
      await tick();
      await tick();
    }
    expect(await Promise.all(calls)).toEqual(Array(10).fill(false));
    expect(gate.most).toBe(3);
    expect(gate.started).toBe(10);
  });

  it('releases the permit of a failed call', async () => {
    const storage = withConcurrencyLimit(new MemoryStorage(), { limit: 1 });
    await expect(storage.stat('missing.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(storage.exists('missing.txt')).resolves.toBe(false);
  });

  it('holds a read permit until its stream is consumed', async () => {
    const memory = new MemoryStorage();
    await memory.save('r.txt', 'stream me');
    const storage = withConcurrencyLimit(memory, { limit: 1 });
    const stream = await storage.read('r.txt');
    let statDone = false;
    const stat = storage.stat('r.txt').then(() => (statDone = true));
    await tick();
    await tick();
    expect(statDone).toBe(false);
    const chunks: Buffer[] = [];
    for await (const c of stream) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('stream me');
    await stat;
    expect(statDone).toBe(true);
  });

  it('releases a read permit when the stream is destroyed unread', async () => {
    const memory = new MemoryStorage();
    await memory.save('r.txt', 'never read');
    const storage = withConcurrencyLimit(memory, { limit: 1 });
    const stream = await storage.read('r.txt');
    stream.destroy();
    await expect(storage.exists('r.txt')).resolves.toBe(true);
  });

  it('a waiting call gives up with ABORTED when its signal fires, without leaking its place', async () => {
    const gate = new Gate(new MemoryStorage());
    const storage = withConcurrencyLimit(gate, { limit: 1 });
    const first = storage.exists('a.txt');
    const controller = new AbortController();
    const queued = storage.save('b.txt', 'body', { signal: controller.signal });
    await tick();
    controller.abort();
    const err = await queued.catch((e: MediaStorageError) => e);
    expect((err as MediaStorageError).code).toBe('ABORTED');
    gate.openOne();
    await first;
    const third = storage.exists('c.txt');
    await tick();
    expect(gate.started).toBe(2); // the aborted save never reached the storage
    gate.openOne();
    await expect(third).resolves.toBe(false);
  });

  it('rejects a limit below 1 with CONFIG', () => {
    expect(() => withConcurrencyLimit(new MemoryStorage(), { limit: 0 })).toThrow(expect.objectContaining({ code: 'CONFIG' }));
  });
});
