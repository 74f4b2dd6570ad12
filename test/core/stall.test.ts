import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { failOnStall } from '../../src/core/stall.js';

const stalled = (): Error => Object.assign(new Error('stalled'), { code: 'ETIMEDOUT' });

async function collect(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('failOnStall', () => {
  it('passes a flowing body through unchanged', async () => {
    const body = Buffer.from('x'.repeat(100_000));
    const out = failOnStall(Readable.from([body.subarray(0, 40_000), body.subarray(40_000)]), 200, stalled);
    expect((await collect(out)).equals(body)).toBe(true);
  });

  it('fails when the source sends nothing while the reader waits', async () => {
    const source = new PassThrough();
    source.write('first bytes');
    const out = failOnStall(source, 100, stalled);
    const started = Date.now();
    await expect(collect(out)).rejects.toThrow('stalled');
    expect(Date.now() - started).toBeLessThan(2000);
    expect(source.destroyed).toBe(true);
  });

  it('never times out a reader that pauses, however long', async () => {
    const source = new PassThrough();
    const out = failOnStall(source, 50, stalled);
    source.end(Buffer.alloc(10_000, 1));
    // Nobody reads for six timeouts: the clock must not run.
    await new Promise((r) => setTimeout(r, 300));
    expect(out.destroyed).toBe(false);
    expect((await collect(out)).length).toBe(10_000);
  });

  it('fails when the source closes before its end, and passes source errors on', async () => {
    const early = new PassThrough();
    const out = failOnStall(early, 1000, stalled);
    early.write('part');
    setTimeout(() => early.destroy(), 10);
    await expect(collect(out)).rejects.toMatchObject({ code: 'ERR_STREAM_PREMATURE_CLOSE' });
    const broken = new PassThrough();
    const out2 = failOnStall(broken, 1000, stalled);
    setTimeout(() => broken.destroy(Object.assign(new Error('reset'), { code: 'ECONNRESET' })), 10);
    await expect(collect(out2)).rejects.toMatchObject({ code: 'ECONNRESET' });
  });
});
