import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { MEDIA_STORAGE_MEMBERS, StorageWrapper } from '../../src/core/wrapper.js';
import type { MediaStorage } from '../../src/core/types.js';
import { StorageLayer, withConcurrencyLimit, withEvents, withFaults, withRetry, withTimeout } from '../../src/layers/index.js';
import { withExistenceCache } from '../../src/avatar/cached-storage.js';
import { MirrorStorage } from '../../src/mirror/index.js';

const info = { key: 'a.txt', size: 1, contentType: 'text/plain' };

/** What each member answers, so that a wrapper's own handling of the result does not fail. */
const ANSWERS: Record<string, () => unknown> = {
  save: async () => info,
  url: async () => '/m/a.txt',
  delete: async () => undefined,
  exists: async () => true,
  read: async () => Readable.from([Buffer.from('a')]),
  readBuffer: async () => Buffer.from('a'),
  stat: async () => info,
  list: async () => ({ items: [info] }),
  listAll: () =>
    (async function* () {
      yield info;
    })(),
  copy: async () => ({ ...info, key: 'b.txt' }),
  presignUpload: async () => ({ method: 'PUT', url: '/u', headers: {}, key: 'a.txt', contentType: 'text/plain', expiresAt: new Date(), enforced: {} }),
  close: async () => undefined,
};

/** A storage built from the interface's member list, recording which members were called. */
function recordingStorage(): { storage: MediaStorage; calls: string[] } {
  const calls: string[] = [];
  const storage: Record<string, unknown> = {};
  for (const [member, kind] of Object.entries(MEDIA_STORAGE_MEMBERS)) {
    if (kind === 'property') continue;
    const answer = ANSWERS[member];
    if (!answer) throw new Error(`no answer for MediaStorage.${member}: add one to ANSWERS`);
    storage[member] = (...args: unknown[]) => {
      calls.push(member);
      void args;
      return answer();
    };
  }
  storage.name = 'recording';
  storage.capabilities = {
    publicUrls: true,
    signedUrls: true,
    downloadUrls: true,
    rangeReads: true,
    serverSideCopy: true,
    metadata: true,
    atomicCreate: true,
    md5Etag: true,
    directUploads: true,
  };
  return { storage: storage as unknown as MediaStorage, calls };
}

/** Calls `member` on `storage` as a caller would, consuming streams and iterables. */
async function callMember(storage: MediaStorage, member: keyof MediaStorage): Promise<void> {
  const result = (storage[member] as (...args: unknown[]) => unknown).call(
    storage,
    member === 'copy' ? 'a.txt' : member === 'list' || member === 'listAll' ? '' : 'a.txt',
    member === 'copy' ? 'b.txt' : member === 'save' ? 'body' : undefined,
  );
  if (result && typeof (result as AsyncIterable<unknown>)[Symbol.asyncIterator] === 'function' && !(result instanceof Readable)) {
    for await (const _ of result as AsyncIterable<unknown>) void _;
    return;
  }
  const value = await result;
  if (value instanceof Readable) for await (const _ of value) void _;
}

const WRAPPERS: Record<string, (inner: MediaStorage) => MediaStorage> = {
  StorageWrapper: (inner) => new StorageWrapper(inner),
  StorageLayer: (inner) => new StorageLayer(inner),
  withRetry: (inner) => withRetry(inner),
  withTimeout: (inner) => withTimeout(inner, { ms: 10_000 }),
  withConcurrencyLimit: (inner) => withConcurrencyLimit(inner, { limit: 2 }),
  withEvents: (inner) => withEvents(inner, () => undefined),
  withFaults: (inner) => withFaults(inner, []),
  withExistenceCache: (inner) => withExistenceCache(inner),
  MirrorStorage: (inner) => new MirrorStorage(inner),
};

describe('core/wrapper: every wrapper forwards every member of MediaStorage', () => {
  const methods = (Object.keys(MEDIA_STORAGE_MEMBERS) as Array<keyof MediaStorage>).filter((m) => MEDIA_STORAGE_MEMBERS[m] === 'method');

  for (const [name, wrap] of Object.entries(WRAPPERS)) {
    it(`${name} forwards ${methods.join(', ')}`, async () => {
      for (const member of methods) {
        // The mirror offers no direct uploads by design (capabilities.directUploads false).
        if (name === 'MirrorStorage' && member === 'presignUpload') continue;
        const { storage, calls } = recordingStorage();
        const wrapper = wrap(storage);
        expect(typeof wrapper[member], `${name}.${member}`).toBe('function');
        await callMember(wrapper, member);
        // listAll may page through list (layers intercept every page): either reaches the storage.
        const reached = member === 'listAll' ? calls.includes('listAll') || calls.includes('list') : calls.includes(member);
        expect(reached, `${name}.${member} reached the wrapped storage (calls: ${calls.join(', ') || 'none'})`).toBe(true);
      }
      const { storage } = recordingStorage();
      expect(wrap(storage).capabilities.rangeReads).toBe(true);
    });
  }
});
