import { describe, expect, it } from 'vitest';
import { sniffContentType } from '../../src/core/content-type.js';
import { MemoryStorage } from '../../src/memory/index.js';

// Regression: sniffing read past the end of a short Uint8Array that owns its ArrayBuffer.
describe('sniffing short bodies', () => {
  it('answers undefined for 0 to 11 bytes that own their ArrayBuffer', () => {
    for (let n = 0; n < 12; n++) expect(sniffContentType(new Uint8Array(n).fill(0x41)), `${n} bytes`).toBeUndefined();
  });
  it('still recognises a RIFF/WEBP head exactly 12 bytes long', () => {
    expect(sniffContentType(new Uint8Array(Buffer.from('RIFF\0\0\0\0WEBP', 'latin1')))).toBe('image/webp');
  });
  it('saves a 2-byte Uint8Array and a 1-byte web stream chunk', async () => {
    const s = new MemoryStorage();
    await s.save('two.txt', new Uint8Array([104, 105]));
    await s.save('one.bin', new ReadableStream<Uint8Array>({ start: (c) => (c.enqueue(new Uint8Array([7])), c.close()) }));
    expect((await s.readBuffer('two.txt')).toString()).toBe('hi');
    expect([...(await s.readBuffer('one.bin'))]).toEqual([7]);
  });
});
