import { describe, expect, it } from 'vitest';
import { forEachConcurrent, mapConcurrent } from '../../src/core/pool.js';

const tick = (ms = 1): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe('core/pool', () => {
  it('never runs more than `concurrency` at once, and runs every item once with its index', async () => {
    let running = 0;
    let peak = 0;
    const seen: Array<[number, number]> = [];
    await forEachConcurrent(
      Array.from({ length: 25 }, (_, i) => i * 10),
      4,
      async (item, index) => {
        running++;
        peak = Math.max(peak, running);
        await tick(item % 3);
        seen.push([item, index]);
        running--;
      },
    );
    expect(peak).toBe(4);
    expect(seen.sort((a, b) => a[1] - b[1])).toEqual(Array.from({ length: 25 }, (_, i) => [i * 10, i]));
  });

  it('pulls an async iterable only as workers free up', async () => {
    let pulled = 0;
    async function* items(): AsyncGenerator<number> {
      for (let i = 0; i < 100; i++) {
        pulled++;
        yield i;
      }
    }
    let maxAhead = 0;
    let done = 0;
    await forEachConcurrent(items(), 3, async () => {
      maxAhead = Math.max(maxAhead, pulled - done);
      await tick();
      done++;
    });
    expect(done).toBe(100);
    expect(maxAhead).toBeLessThanOrEqual(3);
  });

  it('stops pulling after the first failure, waits for the calls in flight, then throws it', async () => {
    const started: number[] = [];
    let settled = 0;
    const boom = new Error('boom');
    const run = forEachConcurrent(
      Array.from({ length: 50 }, (_, i) => i),
      2,
      async (i) => {
        started.push(i);
        await tick(i === 3 ? 1 : 5);
        settled++;
        if (i === 3) throw boom;
      },
    );
    await expect(run).rejects.toBe(boom);
    expect(settled).toBe(started.length);
    expect(started.length).toBeLessThan(10);
  });

  it('on abort pulls nothing more; mapConcurrent then rejects with ABORTED', async () => {
    const controller = new AbortController();
    const ran: number[] = [];
    const run = mapConcurrent(
      Array.from({ length: 20 }, (_, i) => i),
      2,
      async (i) => {
        ran.push(i);
        if (i === 1) controller.abort();
        await tick();
        return i * 2;
      },
      controller.signal,
    );
    await expect(run).rejects.toMatchObject({ code: 'ABORTED' });
    expect(ran.length).toBeLessThanOrEqual(3);
    await expect(mapConcurrent([3, 1, 2], 2, async (i) => (await tick(i), i * 2))).resolves.toEqual([6, 2, 4]);
  });
});
