import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MediaStorageError, type MediaStorageErrorCode } from '../../src/core/errors.js';
import { withFaults, withRetry, type RetryInfo } from '../../src/layers/index.js';
import { MemoryStorage } from '../../src/memory/index.js';

/** A retry layer that records its waits instead of sleeping. */
function setup(options: { maxAttempts?: number; baseDelayMs?: number; maxDelayMs?: number; random?: () => number } = {}) {
  const memory = new MemoryStorage();
  const faults = withFaults(memory);
  const waits: number[] = [];
  const retries: RetryInfo[] = [];
  const storage = withRetry(faults, {
    random: () => 0.5,
    ...options,
    sleep: async (ms) => {
      waits.push(ms);
    },
    onRetry: (info) => retries.push(info),
  });
  return { memory, faults, storage, waits, retries };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (err) {
    return (err as MediaStorageError).code;
  }
  return 'resolved';
}

describe('withRetry', () => {
  it('retries UNAVAILABLE until an attempt succeeds, waiting with backoff', async () => {
    const { faults, storage, memory, waits, retries } = setup();
    faults.failNth('save', 1).failNth('save', 2);
    const info = await storage.save('a/photo.txt', Buffer.from('hello'));
    expect(info.size).toBe(5);
    expect(faults.calls('save')).toBe(3);
    expect((await memory.readBuffer('a/photo.txt')).toString()).toBe('hello');
    // random 0.5 of ceilings 100 and 200
    expect(waits).toEqual([50, 100]);
    expect(retries.map((r) => [r.operation, r.key, r.attempt, r.error.code])).toEqual([
      ['save', 'a/photo.txt', 1, 'UNAVAILABLE'],
      ['save', 'a/photo.txt', 2, 'UNAVAILABLE'],
    ]);
  });

  it('doubles the ceiling per attempt, caps it at maxDelayMs and gives up after maxAttempts', async () => {
    const { faults, storage, waits } = setup({ maxAttempts: 5, baseDelayMs: 100, maxDelayMs: 300, random: () => 0.999999 });
    faults.failAlways('stat');
    expect(await codeOf(storage.stat('x.txt'))).toBe('UNAVAILABLE');
    expect(faults.calls('stat')).toBe(5);
    expect(waits).toEqual([99, 199, 299, 299]);
  });

  it('uses full jitter: the wait is random below the ceiling', async () => {
    const values = [0, 0.25, 0.75];
    const { faults, storage, waits } = setup({ maxAttempts: 4, random: () => values.shift()! });
    faults.failAlways('exists');
    await codeOf(storage.exists('x.txt'));
    expect(waits).toEqual([0, 50, 300]);
  });

  const never: MediaStorageErrorCode[] = [
    'AUTH',
    'PERMISSION',
    'INVALID_KEY',
    'INVALID_INPUT',
    'NOT_FOUND',
    'TOO_LARGE',
    'ALREADY_EXISTS',
    'CONFIG',
    'UNKNOWN',
    'ABORTED',
  ];
  for (const code of never) {
    it(`never retries ${code}`, async () => {
      const { faults, storage, waits } = setup();
      faults.failNth('save', 1, code);
      expect(await codeOf(storage.save('k.txt', 'body'))).toBe(code);
      expect(faults.calls('save')).toBe(1);
      expect(waits).toEqual([]);
    });
  }

  it('does not retry errors that are not MediaStorageErrors', async () => {
    const { faults, storage } = setup();
    faults.inject({ operation: 'stat', error: new Error('socket hang up') });
    await expect(storage.stat('k.txt')).rejects.toThrow('socket hang up');
    expect(faults.calls('stat')).toBe(1);
  });

  it('never retries a save whose body is a stream (its bytes are consumed)', async () => {
    const { faults, storage, memory } = setup();
    faults.failNth('save', 1);
    expect(await codeOf(storage.save('s.txt', Readable.from([Buffer.from('stream')])))).toBe('UNAVAILABLE');
    expect(faults.calls('save')).toBe(1);
    expect(await memory.exists('s.txt')).toBe(false);
    const web = new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new Uint8Array([1])), c.close()) });
    // A rule counts the calls it sees from when it is staged.
    faults.failNth('save', 1);
    expect(await codeOf(storage.save('w.txt', web))).toBe('UNAVAILABLE');
    expect(faults.calls('save')).toBe(2);
  });

  it('retries bodies that can be replayed: Buffer, string, Uint8Array and Blob', async () => {
    const bodies: Array<[string, () => Buffer | string | Uint8Array | Blob, string]> = [
      ['buffer', () => Buffer.from('bytes'), 'bytes'],
      ['string', () => 'text', 'text'],
      ['uint8', () => new Uint8Array([104, 105]), 'hi'],
      ['blob', () => new Blob(['blob body']), 'blob body'],
    ];
    for (const [name, make, expected] of bodies) {
      const { faults, storage, memory } = setup();
      faults.failNth('save', 1);
      await storage.save(`${name}.txt`, make());
      expect(faults.calls('save'), name).toBe(2);
      expect((await memory.readBuffer(`${name}.txt`)).toString(), name).toBe(expected);
    }
  });

  it('retries opening a read and a whole readBuffer', async () => {
    const { faults, storage, memory } = setup();
    await memory.save('r.txt', 'readable');
    faults.failNth('read', 1).failNth('readBuffer', 1);
    const chunks: Buffer[] = [];
    for await (const c of await storage.read('r.txt')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).toString()).toBe('readable');
    expect((await storage.readBuffer('r.txt')).toString()).toBe('readable');
    expect(faults.calls('read')).toBe(2);
    expect(faults.calls('readBuffer')).toBe(2);
  });

  it('waits at least until a Retry-After the backend gave, within maxDelayMs', async () => {
    const { faults, storage, waits } = setup({ random: () => 0, maxDelayMs: 60_000 });
    const retryAfter = new Date(Date.now() + 5_000);
    faults.inject({ operation: 'stat', nth: 1, error: new MediaStorageError('UNAVAILABLE', 'SlowDown', { retryAfter, status: 503 }) });
    await codeOf(storage.stat('k.txt'));
    expect(waits).toHaveLength(1);
    expect(waits[0]).toBeGreaterThan(4_000);
    expect(waits[0]).toBeLessThanOrEqual(5_000);
  });

  it('does not wait for a Retry-After beyond maxDelayMs: it fails at once, retryAfter set', async () => {
    const { faults, storage, waits } = setup({ maxDelayMs: 10_000 });
    const retryAfter = new Date(Date.now() + 120_000);
    faults.inject({ operation: 'stat', nth: 1, error: new MediaStorageError('UNAVAILABLE', 'SlowDown', { retryAfter, status: 429 }) });
    const err = await storage.stat('k.txt').catch((e: MediaStorageError) => e);
    expect((err as MediaStorageError).retryAfter).toEqual(retryAfter);
    expect(faults.calls('stat')).toBe(1);
    expect(waits).toEqual([]);
  });

  describe('a create-only save or copy (ifExists "fail" or "rename") is repeated only when it was not carried out', () => {
    const maybeDone = [
      ['a 500', () => new MediaStorageError('UNAVAILABLE', 'internal error', { status: 500 })],
      ['a reset', () => new MediaStorageError('UNAVAILABLE', 'socket hang up', { cause: Object.assign(new Error('reset'), { code: 'ECONNRESET' }) })],
      ['a timeout (no status)', () => new MediaStorageError('UNAVAILABLE', 'timed out')],
    ] as const;
    const notDone = [
      ['a 503', () => new MediaStorageError('UNAVAILABLE', 'busy', { status: 503 })],
      ['a 429', () => new MediaStorageError('UNAVAILABLE', 'slow down', { status: 429 })],
      [
        'a refused connection',
        () => new MediaStorageError('UNAVAILABLE', 'refused', { cause: Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' }) }),
      ],
    ] as const;
    for (const ifExists of ['fail', 'rename'] as const) {
      for (const [what, error] of maybeDone) {
        it(`save ifExists "${ifExists}" after ${what}: one attempt`, async () => {
          const { faults, storage } = setup();
          faults.inject({ operation: 'save', nth: 1, error });
          expect(await codeOf(storage.save('k.txt', 'body', { ifExists }))).toBe('UNAVAILABLE');
          expect(faults.calls('save')).toBe(1);
        });
      }
      for (const [what, error] of notDone) {
        it(`save ifExists "${ifExists}" after ${what}: retried`, async () => {
          const { faults, storage } = setup();
          faults.inject({ operation: 'save', nth: 1, error });
          expect(await codeOf(storage.save('k.txt', 'body', { ifExists }))).toBe('resolved');
          expect(faults.calls('save')).toBe(2);
        });
      }
    }
    it('copy ifExists "fail" after a 500: one attempt; after a 503: retried', async () => {
      const { faults, storage, memory } = setup();
      await memory.save('from.txt', 'x');
      faults.inject({ operation: 'copy', nth: 1, error: maybeDone[0][1] });
      expect(await codeOf(storage.copy('from.txt', 'to.txt', { ifExists: 'fail' }))).toBe('UNAVAILABLE');
      expect(faults.calls('copy')).toBe(1);
      faults.inject({ operation: 'copy', nth: 1, error: notDone[0][1] });
      expect(await codeOf(storage.copy('from.txt', 'to.txt', { ifExists: 'fail' }))).toBe('resolved');
      expect(faults.calls('copy')).toBe(3);
    });
    it('a plain save (overwrite) after a 500 is retried: running it twice stores the same', async () => {
      const { faults, storage } = setup();
      faults.inject({ operation: 'save', nth: 1, error: maybeDone[0][1] });
      expect(await codeOf(storage.save('k.txt', 'body'))).toBe('resolved');
      expect(faults.calls('save')).toBe(2);
    });
  });

  it('stops waiting and answers ABORTED when the caller aborts during the backoff', async () => {
    const memory = new MemoryStorage();
    const faults = withFaults(memory).failAlways('save');
    const controller = new AbortController();
    const storage = withRetry(faults, {
      baseDelayMs: 60_000,
      random: () => 0.99,
      onRetry: () => setImmediate(() => controller.abort()),
    });
    expect(await codeOf(storage.save('k.txt', 'body', { signal: controller.signal }))).toBe('ABORTED');
    expect(faults.calls('save')).toBe(1);
  });

  it('does not start another attempt once the signal has fired', async () => {
    const memory = new MemoryStorage();
    const controller = new AbortController();
    const faults = withFaults(memory).inject({
      operation: 'save',
      error: () => {
        controller.abort();
        return new MediaStorageError('UNAVAILABLE', 'reset');
      },
    });
    const storage = withRetry(faults, { sleep: async () => undefined });
    expect(await codeOf(storage.save('k.txt', 'body', { signal: controller.signal }))).toBe('UNAVAILABLE');
    expect(faults.calls('save')).toBe(1);
  });

  it('rejects a nonsensical configuration with CONFIG', () => {
    const memory = new MemoryStorage();
    expect(() => withRetry(memory, { maxAttempts: 0 })).toThrow(expect.objectContaining({ code: 'CONFIG' }));
    expect(() => withRetry(memory, { baseDelayMs: -1 })).toThrow(expect.objectContaining({ code: 'CONFIG' }));
  });

  it('keeps name and capabilities of the storage it wraps, and pages listAll through list', async () => {
    const { faults, storage, memory } = setup();
    for (let i = 0; i < 5; i++) await memory.save(`p/${i}.txt`, 'x');
    faults.failNth('list', 2);
    const keys: string[] = [];
    for await (const info of storage.listAll('p/', { pageSize: 2 })) keys.push(info.key);
    expect(keys).toEqual(['p/0.txt', 'p/1.txt', 'p/2.txt', 'p/3.txt', 'p/4.txt']);
    expect(faults.calls('list')).toBe(4); // 3 pages + 1 retry
    expect(storage.name).toBe('memory');
    expect(storage.capabilities).toBe(memory.capabilities);
  });
});
