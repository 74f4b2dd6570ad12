import { describe, expect, it } from 'vitest';
import { MediaStorageError } from '../../src/core/errors.js';
import { formatStorageEvent, withEvents, withFaults, withLogger, withRetry, type StorageEvent } from '../../src/layers/index.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { tempDir } from '../support/tmp.js';

function observed() {
  const memory = new MemoryStorage({ secret: 'events-test-secret-0123456789' });
  const events: StorageEvent[] = [];
  const storage = withEvents(memory, (e) => events.push(e));
  return { memory, storage, events };
}

describe('withEvents', () => {
  it('reports operation, key, bytes, outcome and a duration for every operation', async () => {
    const { storage, events } = observed();
    await storage.save('a/photo.txt', 'twelve bytes');
    await storage.exists('a/photo.txt');
    await storage.stat('a/photo.txt');
    await storage.readBuffer('a/photo.txt');
    await storage.copy('a/photo.txt', 'b/copy.txt');
    await storage.list('a/');
    await storage.url('a/photo.txt');
    await storage.delete('b/copy.txt');
    expect(events.map((e) => [e.operation, e.key, e.target, e.bytes, e.outcome])).toEqual([
      ['save', 'a/photo.txt', undefined, 12, 'ok'],
      ['exists', 'a/photo.txt', undefined, undefined, 'ok'],
      ['stat', 'a/photo.txt', undefined, undefined, 'ok'],
      ['readBuffer', 'a/photo.txt', undefined, 12, 'ok'],
      ['copy', 'a/photo.txt', 'b/copy.txt', 12, 'ok'],
      ['list', 'a/', undefined, undefined, 'ok'],
      ['url', 'a/photo.txt', undefined, undefined, 'ok'],
      ['delete', 'b/copy.txt', undefined, undefined, 'ok'],
    ]);
    for (const e of events) {
      expect(e.backend).toBe('memory');
      expect(e.durationMs).toBeGreaterThanOrEqual(0);
      expect(e.errorCode).toBeUndefined();
    }
  });

  it('reports a read once its stream has been consumed, with the bytes delivered', async () => {
    const { storage, memory, events } = observed();
    await memory.save('big.bin', Buffer.alloc(200_000, 1));
    const stream = await storage.read('big.bin');
    expect(events).toHaveLength(0);
    let total = 0;
    for await (const c of stream) total += (c as Buffer).length;
    expect(total).toBe(200_000);
    await new Promise((r) => setImmediate(r));
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ operation: 'read', key: 'big.bin', bytes: 200_000, outcome: 'ok' });
  });

  it('reports a read stream destroyed early as an error, with what had been read', async () => {
    // Local files are read in 64 KiB chunks (memory hands over one Buffer).
    const tmp = await tempDir('events');
    const local = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    const events: StorageEvent[] = [];
    const storage = withEvents(local, (e) => events.push(e));
    await local.save('big.bin', Buffer.alloc(500_000, 1));
    const stream = await storage.read('big.bin');
    for await (const c of stream) {
      expect((c as Buffer).length).toBeGreaterThan(0);
      break; // leaving the loop destroys the stream
    }
    await new Promise((r) => setImmediate(r));
    expect(events).toHaveLength(1);
    expect(events[0]!.outcome).toBe('error');
    expect(events[0]!.bytes).toBeGreaterThan(0);
    expect(events[0]!.bytes).toBeLessThan(500_000);
    await tmp.remove();
  });

  it('reports failures with their code', async () => {
    const { storage, events } = observed();
    await expect(storage.stat('missing.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(storage.save('../escape.txt', 'x')).rejects.toMatchObject({ code: 'INVALID_KEY' });
    expect(events.map((e) => [e.operation, e.outcome, e.errorCode])).toEqual([
      ['stat', 'error', 'NOT_FOUND'],
      ['save', 'error', 'INVALID_KEY'],
    ]);
  });

  it('never passes on a secret or a URL signature', async () => {
    const secret = 'sk_live_0123456789abcdef';
    const signed = 'https://bucket.s3.example.com/a.jpg?X-Amz-Credential=AKIAEXAMPLE&X-Amz-Signature=deadbeefcafe1234&X-Amz-Expires=60';
    const faults = withFaults(new MemoryStorage())
      // A backend that quotes a signed URL and its API secret in an error (not a MediaStorageError, so unredacted).
      .inject({ operation: 'stat', error: new Error(`GET ${signed} failed with api_secret ${secret}`) })
      .inject({ operation: 'exists', error: new MediaStorageError('UNAVAILABLE', `503 for ${signed}`) });
    const events: StorageEvent[] = [];
    const storage = withEvents(faults, (e) => events.push(e), { secrets: [secret] });
    await expect(storage.stat('a.jpg')).rejects.toThrow();
    await expect(storage.exists('a.jpg')).rejects.toThrow();
    const memorySigned = await storage.url('a.jpg', { expiresIn: 60 });
    const signature = new URL(memorySigned, 'http://x').searchParams.get('signature')!;
    expect(signature.length).toBeGreaterThan(10);
    const text = JSON.stringify(events);
    expect(events).toHaveLength(3);
    expect(events[0]!.errorCode).toBe('UNKNOWN');
    expect(events[1]!.errorCode).toBe('UNAVAILABLE');
    expect(text).not.toContain(secret);
    expect(text).not.toContain('deadbeefcafe1234');
    expect(text).not.toContain('AKIAEXAMPLE');
    expect(text).not.toContain(signature);
    expect(text).toContain('[redacted]');
  });

  it('a listener that throws does not change the outcome', async () => {
    const storage = withEvents(new MemoryStorage(), () => {
      throw new Error('metrics backend down');
    });
    await expect(storage.save('k.txt', 'body')).resolves.toMatchObject({ size: 4 });
    await expect(storage.stat('nope.txt')).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('inside a retry layer it sees every attempt; outside, one call', async () => {
    const inner: StorageEvent[] = [];
    const outer: StorageEvent[] = [];
    const faults = withFaults(new MemoryStorage()).failNth('save', 1).failNth('save', 2);
    const storage = withEvents(
      withRetry(
        withEvents(faults, (e) => inner.push(e)),
        { sleep: async () => undefined },
      ),
      (e) => outer.push(e),
    );
    await storage.save('k.txt', 'body');
    expect(inner.map((e) => e.outcome)).toEqual(['error', 'error', 'ok']);
    expect(outer.map((e) => e.outcome)).toEqual(['ok']);
  });
});

describe('withLogger', () => {
  it('logs successes with info and failures with warn, one line each', async () => {
    const lines: Array<[string, string]> = [];
    const storage = withLogger(new MemoryStorage(), { info: (m) => lines.push(['info', m]), warn: (m) => lines.push(['warn', m]) });
    await storage.save('a b.txt', 'hello');
    await storage.stat('gone.txt').catch(() => undefined);
    expect(lines).toHaveLength(2);
    expect(lines[0]![0]).toBe('info');
    expect(lines[0]![1]).toMatch(/^media-storage memory save "a b\.txt" ok \d+\.\d ms 5 B$/);
    expect(lines[1]![0]).toBe('warn');
    expect(lines[1]![1]).toMatch(/^media-storage memory stat "gone\.txt" error NOT_FOUND \d+\.\d ms: .*gone\.txt/);
  });

  it('formats a copy with its target', () => {
    expect(formatStorageEvent({ backend: 's3', operation: 'copy', key: 'a', target: 'b', durationMs: 1.26, bytes: 3, outcome: 'ok' })).toBe(
      'media-storage s3 copy "a" -> "b" ok 1.3 ms 3 B',
    );
  });
});
