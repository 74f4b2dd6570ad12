/**
 * Opt-in: the contract suite against a real B2 bucket when B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY
 * and B2_BUCKET_NAME are set (B2_VISIBILITY=public for an allPublic bucket). Everything is written
 * under a unique prefix and deleted afterwards. Skipped, visibly, otherwise.
 */
import { randomBytes } from 'node:crypto';
import { describe, it } from 'vitest';
import { B2Storage } from '../../src/b2/index.js';
import { describeStorageContract } from '../../src/testing/index.js';

const { B2_APPLICATION_KEY_ID: keyId, B2_APPLICATION_KEY: key, B2_BUCKET_NAME: bucketName, B2_VISIBILITY: visibility } = process.env;

if (keyId && key && bucketName) {
  describeStorageContract(
    `b2 live (bucket ${bucketName})`,
    () => {
      const storage = new B2Storage({
        applicationKeyId: keyId,
        applicationKey: key,
        bucketName,
        location: `media-storage-live-test/${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`,
        visibility: visibility === 'public' ? 'public' : 'private',
      });
      return {
        storage,
        cleanup: async () => {
          for await (const item of storage.listAll('')) await storage.delete(item.key);
        },
      };
    },
    { slowTestTimeout: 600_000 },
  );
} else {
  describe('b2 live', () => {
    it.skip('contract suite against a real B2 bucket (set B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY and B2_BUCKET_NAME to run)', () => {});
  });
}
