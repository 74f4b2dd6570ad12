import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { MediaStorageError } from '../../src/core/errors.js';
import { withFaults } from '../../src/layers/index.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { tempDir } from '../support/tmp.js';

async function outcome(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
    return 'ok';
  } catch (err) {
    return (err as MediaStorageError).code ?? String(err);
  }
}

describe('withFaults', () => {
  it('fails exactly the Nth call of an operation with the chosen code', async () => {
    const memory = new MemoryStorage();
    const storage = withFaults(memory).failNth('save', 2, 'AUTH');
    const results = [];
    for (let i = 1; i <= 4; i++) results.push(await outcome(storage.save(`k${i}.txt`, 'x')));
    expect(results).toEqual(['ok', 'AUTH', 'ok', 'ok']);
    expect(await memory.exists('k2.txt')).toBe(false);
    expect(storage.calls('save')).toBe(4);
  });

  it('gives a MediaStorageError with backend, key, operation and a 503 status for UNAVAILABLE', async () => {
    const storage = withFaults(new MemoryStorage()).failAlways('read');
    const err = (await storage.read('a/b.png').catch((e: unknown) => e)) as MediaStorageError;
    expect(err.name).toBe('MediaStorageError');
    expect(err).toMatchObject({ code: 'UNAVAILABLE', backend: 'memory', key: 'a/b.png', operation: 'read', status: 503 });
    expect(err.message).toContain('injected fault');
  });

  it('fails every time until cleared, and counts calls of each operation', async () => {
    const storage = withFaults(new MemoryStorage()).failAlways('*', 'UNAVAILABLE');
    expect(await outcome(storage.exists('a'))).toBe('UNAVAILABLE');
    expect(await outcome(storage.list())).toBe('UNAVAILABLE');
    storage.clear();
    expect(await outcome(storage.exists('a'))).toBe('ok');
    expect(storage.calls('exists')).toBe(2);
    expect(storage.calls('list')).toBe(1);
    expect(storage.calls()).toBe(3);
  });

  it('fires from the Nth call for `times` calls, only on matching keys', async () => {
    const storage = withFaults(new MemoryStorage()).inject({ operation: ['stat', 'exists'], key: /^avatars\//, nth: 2, times: 2, code: 'PERMISSION' });
    const seen = [];
    for (const key of ['avatars/1', 'docs/1', 'avatars/2', 'avatars/3', 'avatars/4']) seen.push(await outcome(storage.exists(key)));
    expect(seen).toEqual(['ok', 'ok', 'PERMISSION', 'PERMISSION', 'ok']);
  });

  it('throws a custom error object as it is', async () => {
    const custom = Object.assign(new Error('ECONNRESET'), { code: 'ECONNRESET' });
    const storage = withFaults(new MemoryStorage()).inject({ operation: 'delete', error: custom });
    await expect(storage.delete('a')).rejects.toBe(custom);
  });

  it('adds latency that the caller can abort', async () => {
    const storage = withFaults(new MemoryStorage()).addLatency('save', 60_000);
    const controller = new AbortController();
    const pending = storage.save('a.txt', 'x', { signal: controller.signal });
    setImmediate(() => controller.abort());
    expect(await outcome(pending)).toBe('ABORTED');
  });

  it('delays without failing when a rule has only a latency', async () => {
    const storage = withFaults(new MemoryStorage()).addLatency('exists', 5);
    expect(await outcome(storage.exists('a'))).toBe('ok');
  });

  it('"after" loses the answer of a call that did happen', async () => {
    const memory = new MemoryStorage();
    const storage = withFaults(memory).inject({ operation: 'save', nth: 1, when: 'after', code: 'UNAVAILABLE' });
    expect(await outcome(storage.save('lost-answer.txt', 'stored anyway'))).toBe('UNAVAILABLE');
    expect((await memory.readBuffer('lost-answer.txt')).toString()).toBe('stored anyway');
    await memory.save('r.txt', 'x');
    storage.inject({ operation: 'read', when: 'after', code: 'UNAVAILABLE' });
    expect(await outcome(storage.read('r.txt'))).toBe('UNAVAILABLE');
  });

  it('refuses a rule with an unknown operation or a bad nth', () => {
    expect(() => withFaults(new MemoryStorage()).inject({ operation: 'upload' as never })).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    expect(() => withFaults(new MemoryStorage()).failNth('save', 0)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  it('takes rules in the constructor call', async () => {
    const storage = withFaults(new MemoryStorage(), [{ operation: 'stat', code: 'AUTH' }]);
    expect(await outcome(storage.stat('a'))).toBe('AUTH');
  });

  describe('afterBytes: a transfer cut partway', () => {
    it('cuts a save body partway on memory and local: nothing new is stored, an old object stays whole', async () => {
      const tmp = await tempDir('faults-cut');
      try {
        for (const inner of [new MemoryStorage(), new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false })]) {
          const storage = withFaults(inner).inject({ operation: 'save', afterBytes: 100_000, code: 'UNAVAILABLE', times: Number.POSITIVE_INFINITY });
          await inner.save('old.bin', 'the old version');
          const bodies: Array<[string, () => unknown]> = [
            ['Buffer', () => randomBytes(300_000)],
            ['string', () => 'x'.repeat(300_000)],
            ['Blob', () => new Blob([randomBytes(300_000)])],
            ['Readable', () => Readable.from([randomBytes(150_000), randomBytes(150_000)])],
            [
              'web stream',
              () => new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(randomBytes(200_000)), c.enqueue(randomBytes(200_000)), c.close()) }),
            ],
          ];
          for (const [label, make] of bodies) {
            expect(await outcome(storage.save(`new-${label}.bin`, make() as never)), `${inner.name} ${label}`).toBe('UNAVAILABLE');
            expect(await inner.exists(`new-${label}.bin`), `${inner.name} ${label}`).toBe(false);
            expect(await outcome(storage.save('old.bin', make() as never)), `${inner.name} ${label} over old`).toBe('UNAVAILABLE');
            expect((await inner.readBuffer('old.bin')).toString(), `${inner.name} ${label}`).toBe('the old version');
          }
          // A body no longer than the cut goes through.
          await storage.save('short.bin', Buffer.alloc(100_000, 1));
          expect((await inner.stat('short.bin')).size).toBe(100_000);
          expect(await inner.list()).toMatchObject({ items: [{ key: 'old.bin' }, { key: 'short.bin' }] });
        }
      } finally {
        await tmp.remove();
      }
    });

    it('cuts a read stream after N bytes with the chosen code', async () => {
      const tmp = await tempDir('faults-read');
      try {
        const inner = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
        await inner.save('big.bin', randomBytes(1_000_000));
        const storage = withFaults(inner).inject({ operation: 'read', afterBytes: 200_000, code: 'UNAVAILABLE' });
        const stream = await storage.read('big.bin');
        let received = 0;
        const err = await (async () => {
          for await (const chunk of stream) received += (chunk as Buffer).length;
        })().catch((e: unknown) => e as MediaStorageError);
        expect(err?.code).toBe('UNAVAILABLE');
        expect(received).toBeLessThanOrEqual(200_000);
        expect(received).toBeGreaterThan(0);
        expect(storage.calls('read')).toBe(1);
      } finally {
        await tmp.remove();
      }
    });

    it('fails other operations before the call, and refuses a negative afterBytes', async () => {
      const storage = withFaults(new MemoryStorage()).inject({ operation: '*', afterBytes: 10, code: 'UNAVAILABLE' });
      expect(await outcome(storage.stat('a'))).toBe('UNAVAILABLE');
      expect(() => storage.inject({ operation: 'read', afterBytes: -1 })).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    });
  });
});
