import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { MediaStorageError } from '../../src/core/errors.js';
import { withFaults, withRetry, withTimeout } from '../../src/layers/index.js';
import { MemoryStorage } from '../../src/memory/index.js';

async function errorOf(promise: Promise<unknown>): Promise<MediaStorageError> {
  try {
    await promise;
  } catch (err) {
    return err as MediaStorageError;
  }
  throw new Error('expected a failure');
}

/** A body that sends one chunk and then never ends, like a client that stalls mid-upload. */
function stallingBody(): Readable & { destroyedWith?: unknown } {
  let sent = false;
  const stream: Readable & { destroyedWith?: unknown } = new Readable({
    read() {
      if (!sent) {
        sent = true;
        this.push(Buffer.alloc(1024, 0x61));
      }
    },
    destroy(err, callback) {
      stream.destroyedWith = err ?? 'destroyed';
      callback(err);
    },
  });
  return stream;
}

describe('withTimeout', () => {
  it('fails a call that overruns its deadline with UNAVAILABLE naming the operation and key', async () => {
    const faults = withFaults(new MemoryStorage()).addLatency('stat', 5_000);
    const storage = withTimeout(faults, { ms: 30 });
    const err = await errorOf(storage.stat('slow.txt'));
    expect(err.code).toBe('UNAVAILABLE');
    expect(err.operation).toBe('stat');
    expect(err.key).toBe('slow.txt');
    expect(err.message).toMatch(/stat "slow\.txt" timed out after 30 ms/);
  });

  it('aborts a stalled save: nothing is stored, and an old object stays whole', async () => {
    const memory = new MemoryStorage();
    const storage = withTimeout(memory, { ms: 50 });
    await memory.save('old.txt', 'the old version');
    const fresh = stallingBody();
    const over = stallingBody();
    expect((await errorOf(storage.save('new.txt', fresh))).code).toBe('UNAVAILABLE');
    expect((await errorOf(storage.save('old.txt', over))).code).toBe('UNAVAILABLE');
    // The body was torn down through the signal, so the backend saw the abort.
    await new Promise((r) => setImmediate(r));
    expect(fresh.destroyedWith).toBeDefined();
    expect(over.destroyedWith).toBeDefined();
    expect(await memory.exists('new.txt')).toBe(false);
    expect((await memory.readBuffer('old.txt')).toString()).toBe('the old version');
  });

  it('lets a call that finishes in time through untouched', async () => {
    const memory = new MemoryStorage();
    const storage = withTimeout(memory, { ms: 10_000 });
    await storage.save('ok.txt', 'fine');
    expect((await storage.readBuffer('ok.txt')).toString()).toBe('fine');
    const chunks: Buffer[] = [];
    for await (const c of await storage.read('ok.txt')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('fine');
  });

  it('takes a deadline per operation', async () => {
    const faults = withFaults(new MemoryStorage()).addLatency('stat', 5_000).addLatency('exists', 100);
    const storage = withTimeout(faults, { ms: 5_000, operations: { stat: 20 } });
    expect((await errorOf(storage.stat('a.txt'))).code).toBe('UNAVAILABLE');
    await expect(storage.exists('a.txt')).resolves.toBe(false);
  });

  it("keeps the caller's own abort as ABORTED, not a timeout", async () => {
    const storage = withTimeout(new MemoryStorage(), { ms: 10_000 });
    const controller = new AbortController();
    const body = stallingBody();
    const pending = storage.save('k.txt', body, { signal: controller.signal });
    setImmediate(() => controller.abort());
    expect((await errorOf(pending)).code).toBe('ABORTED');
  });

  it('under a retry layer, each attempt gets its own deadline', async () => {
    const faults = withFaults(new MemoryStorage()).inject({ operation: 'exists', nth: 1, times: 2, latencyMs: 5_000 });
    const storage = withRetry(withTimeout(faults, { ms: 20 }), { sleep: async () => undefined });
    await expect(storage.exists('k.txt')).resolves.toBe(false);
    expect(faults.calls('exists')).toBe(3);
  });

  it('rejects a deadline that is not a positive number with CONFIG', () => {
    expect(() => withTimeout(new MemoryStorage(), { ms: 0 })).toThrow(expect.objectContaining({ code: 'CONFIG' }));
    expect(() => withTimeout(new MemoryStorage(), { ms: 10, operations: { save: Number.NaN } })).toThrow(expect.objectContaining({ code: 'CONFIG' }));
  });
});
