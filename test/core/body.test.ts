import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { bodyChunks, PeekableBody, prepareBody, streamToBuffer, toChunk } from '../../src/core/body.js';
import { SNIFF_BYTES } from '../../src/core/content-type.js';
import { makePng } from '../support/png.js';

function chunked(data: Buffer, size: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < data.length; i += size) parts.push(data.subarray(i, i + size));
  return Readable.from(parts, { objectMode: false });
}

describe('core/body: PeekableBody (peek-and-replay)', () => {
  const data = Buffer.from(Array.from({ length: 10_000 }, (_, i) => i % 251));

  it('reads ahead only as far as asked, then replays every byte in order', async () => {
    let pulled = 0;
    const source = chunked(data, 1000).on('data', () => pulled++);
    const peek = new PeekableBody(source);
    expect(await peek.fill(2500)).toBe(false);
    expect(peek.bytes).toBe(3000);
    expect(peek.head(1500)).toEqual(data.subarray(0, 1500));
    expect(await streamToBuffer(peek.stream())).toEqual(data);
    expect(pulled).toBeGreaterThan(0);
  });

  it('says when the body ended inside the window, and gives it whole', async () => {
    const peek = new PeekableBody(chunked(data, 3000));
    expect(await peek.fill(data.length + 1)).toBe(true);
    expect(peek.whole()).toEqual(data);
  });

  it('hands the body out once', async () => {
    const peek = new PeekableBody(chunked(data, 3000));
    await peek.fill(1);
    await streamToBuffer(peek.chunks());
    await expect(streamToBuffer(peek.chunks())).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('close() stops a source that was never handed out', async () => {
    const source = chunked(data, 1000);
    const peek = new PeekableBody(source);
    await peek.fill(1);
    await peek.close();
    expect(source.destroyed).toBe(true);
  });
});

describe('core/body: prepareBody', () => {
  it('sniffs the type from the first bytes of a stream and still delivers every byte', async () => {
    const image = Buffer.concat([makePng(4, 4), Buffer.alloc(50_000, 7)]);
    const prepared = await prepareBody(chunked(image, 100), 'photo');
    expect(prepared.detectedContentType).toBe('image/png');
    expect(prepared.buffer).toBeUndefined();
    expect(await streamToBuffer(prepared.stream())).toEqual(image);
  });

  it('a stream that ends inside the sniff window becomes bytes in memory, checked like a Buffer', async () => {
    const prepared = await prepareBody(chunked(Buffer.from('hello'), 2), 'a.txt');
    expect(prepared.buffer).toEqual(Buffer.from('hello'));
    expect(prepared.size).toBe(5);
    await expect(prepareBody(Readable.from([]), 'empty.txt')).rejects.toMatchObject({ code: 'INVALID_INPUT' });
  });

  it('maxSize: refused before any I/O for known sizes, as the bytes flow for streams', async () => {
    await expect(prepareBody(Buffer.alloc(11), 'a.bin', { maxSize: 10 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    await expect(prepareBody(chunked(Buffer.alloc(SNIFF_BYTES * 2), 64), 'a.bin', { maxSize: 100 })).rejects.toMatchObject({ code: 'TOO_LARGE' });
    const big = await prepareBody(chunked(Buffer.alloc(SNIFF_BYTES * 4), 1024), 'a.bin', { maxSize: SNIFF_BYTES * 2 });
    await expect(streamToBuffer(big.stream())).rejects.toMatchObject({ code: 'TOO_LARGE' });
  });

  it('a stream can be consumed once', async () => {
    const prepared = await prepareBody(chunked(Buffer.alloc(SNIFF_BYTES * 2, 1), 512), 'a.bin');
    await streamToBuffer(prepared.stream());
    expect(() => prepared.stream()).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  it('bodyChunks and toChunk accept bytes and strings only', async () => {
    expect(await streamToBuffer(bodyChunks('abc') as AsyncIterable<unknown>)).toEqual(Buffer.from('abc'));
    expect(toChunk(new Uint8Array([1, 2]))).toEqual(Buffer.from([1, 2]));
    expect(() => toChunk(42)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});
