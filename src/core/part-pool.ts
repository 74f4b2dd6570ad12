/**
 * Part buffers for uploads in parts, allocated once (at most `count`) and reused: a part's buffer
 * returns to the pool when its request finished, and `take` waits while all are in flight. So
 * nothing part-sized becomes garbage, and an upload of any length holds at most `count × partSize`
 * (fresh buffers per part, as lib-storage allocates them, leave the collector tens of MB behind).
 * Used by the S3 and Azure uploads.
 */
export class PartPool {
  private readonly free: Buffer[] = [];
  private allocated = 0;
  private waiting: Array<(buffer: Buffer) => void> = [];

  constructor(
    private readonly partSize: number,
    private readonly count: number,
  ) {}

  async take(): Promise<Buffer> {
    const buffer = this.free.pop();
    if (buffer) return buffer;
    if (this.allocated < this.count) {
      this.allocated++;
      return Buffer.allocUnsafe(this.partSize);
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  give(buffer: Buffer): void {
    const next = this.waiting.shift();
    if (next) next(buffer);
    else this.free.push(buffer);
  }
}

/**
 * Reads `chunks` into parts of exactly `partSize` bytes (the last may be shorter) in buffers of
 * `pool`, and calls `send` for each as soon as it is full, at most `queueSize` at a time (waiting
 * for a free buffer bounds it). Stops reading at the first failure of `send` (rethrown once the
 * parts in flight settled). Resolves with the number of parts and bytes.
 */
export async function sendInParts(
  chunks: AsyncIterable<Buffer>,
  partSize: number,
  queueSize: number,
  send: (part: Buffer, index: number) => Promise<void>,
): Promise<{ parts: number; size: number }> {
  const pool = new PartPool(partSize, queueSize + 1);
  const inFlight = new Set<Promise<void>>();
  let failure: { error: unknown } | undefined;
  let parts = 0;
  let size = 0;
  const launch = (buffer: Buffer, length: number): void => {
    const index = parts++;
    const request = send(buffer.subarray(0, length), index)
      .catch((error: unknown) => {
        failure ??= { error };
      })
      .finally(() => {
        pool.give(buffer);
        inFlight.delete(request);
      });
    inFlight.add(request);
  };
  try {
    let buffer = await pool.take();
    let filled = 0;
    for await (const chunk of chunks) {
      size += chunk.length;
      let offset = 0;
      while (offset < chunk.length) {
        const n = Math.min(chunk.length - offset, partSize - filled);
        chunk.copy(buffer, filled, offset, offset + n);
        filled += n;
        offset += n;
        if (filled === partSize) {
          if (failure) throw failure.error;
          launch(buffer, filled);
          buffer = await pool.take();
          filled = 0;
        }
      }
    }
    if (filled > 0) launch(buffer, filled);
    else pool.give(buffer);
    await Promise.all(inFlight);
    if (failure) throw failure.error;
    return { parts, size };
  } catch (err) {
    await Promise.allSettled(inFlight);
    throw err;
  }
}
