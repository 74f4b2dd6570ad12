import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/local/index.js';
import { tempDir } from '../support/tmp.js';

// readBuffer reads a whole local file in one go instead of streaming it; the same answers as read().
describe('LocalStorage.readBuffer', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let storage: LocalStorage;
  const data = randomBytes(3 * 1024 * 1024 + 17);

  beforeAll(async () => {
    tmp = await tempDir('read-buffer');
    storage = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    await storage.save('folder/big.bin', data);
  });
  afterAll(() => tmp.remove());

  it('gives the same bytes as streaming, whole and by range', async () => {
    expect((await storage.readBuffer('folder/big.bin')).equals(data)).toBe(true);
    const chunks: Buffer[] = [];
    for await (const c of await storage.read('folder/big.bin')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(data)).toBe(true);
    expect((await storage.readBuffer('folder/big.bin', { range: { start: 10, end: 19 } })).equals(data.subarray(10, 20))).toBe(true);
  });

  it('answers NOT_FOUND for a missing key and for a folder, INVALID_INPUT for a bad range, ABORTED when aborted', async () => {
    await expect(storage.readBuffer('folder/missing.bin')).rejects.toMatchObject({ code: 'NOT_FOUND', backend: 'local', key: 'folder/missing.bin' });
    await expect(storage.readBuffer('folder')).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(storage.readBuffer('folder/big.bin', { range: { start: 5, end: 1 } })).rejects.toMatchObject({ code: 'INVALID_INPUT' });
    const controller = new AbortController();
    controller.abort();
    await expect(storage.readBuffer('folder/big.bin', { signal: controller.signal })).rejects.toMatchObject({ code: 'ABORTED' });
  });
});
