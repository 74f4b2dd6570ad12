import { describe, expect, it, onTestFinished } from 'vitest';
import { decodeCursor, decodeCursorState, encodeCursor, encodeCursorState } from '../../src/core/cursor.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { LocalStorage } from '../../src/local/index.js';
import { tempDir } from '../support/tmp.js';

describe('core/cursor', () => {
  it('round-trips any position, Unicode included, as base64url', () => {
    for (const position of ['a', 'photos/2024/José.jpg', 'e\u0301', '😀/x', ' spaced key ']) {
      const cursor = encodeCursor(position);
      expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
      expect(decodeCursor(cursor)).toBe(position);
    }
  });

  it('refuses what it cannot have made, as INVALID_INPUT', () => {
    // Not base64url; padding; trailing bits that do not round-trip; bytes that are not UTF-8; empty.
    for (const bad of ['not a cursor!', `${encodeCursor('abc')}=`, 'YWJjZB', Buffer.from([0xff, 0xfe]).toString('base64url'), '']) {
      expect(() => decodeCursor(bad), bad).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    }
  });

  it('carries structured state, checked for its shape', () => {
    const isState = (v: unknown): v is { after: string } => typeof v === 'object' && v !== null && typeof (v as { after?: unknown }).after === 'string';
    expect(decodeCursorState(encodeCursorState({ after: 'k' }), isState)).toEqual({ after: 'k' });
    expect(() => decodeCursorState(encodeCursorState({ after: 1 }), isState)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
    expect(() => decodeCursorState(encodeCursor('{not json'), isState)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });

  it('a forged cursor is INVALID_INPUT on the local and memory backends, not a listing from elsewhere', async () => {
    const { dir, remove } = await tempDir('cursor');
    onTestFinished(remove);
    for (const storage of [new MemoryStorage(), new LocalStorage({ root: dir, warnOnEphemeralDisk: false })]) {
      await storage.save('a.txt', 'a');
      await storage.save('b.txt', 'b');
      const first = await storage.list('', { limit: 1 });
      expect(first.cursor).toBeDefined();
      expect((await storage.list('', { cursor: first.cursor!, limit: 1 })).items.map((i) => i.key)).toEqual(['b.txt']);
      await expect(storage.list('', { cursor: 'garbage!!' })).rejects.toMatchObject({ code: 'INVALID_INPUT', backend: storage.name });
    }
  });
});
