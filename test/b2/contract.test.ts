import { B2Storage } from '../../src/b2/index.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { startFakeB2 } from '../support/fakes/b2-server.js';
import { HOSTILE_INPUT_OPTIONS } from '../../src/testing/hostile-keys.js';
import { b2Seeder } from '../support/foreign-seeders.js';
import { QUICK } from '../support/matrix.js';

// The hostile corpus and the full concurrency bar (64 saves to one key, 1,000 to distinct keys):
// against the fake B2 on this 2-core machine the 1,000 saves take 2-3.5 s per run, the 217 odd
// keys 1-2.5 s, so the full counts stay.

// Small thresholds so the contract's 10 MB bodies cross the spool and large-file paths too.
const small = { spoolThreshold: 256 * 1024, largeFileThreshold: 6 * 1024 * 1024, partSize: 5_000_000 };

describeStorageContract(
  'b2 (private bucket, fake B2)',
  async () => {
    const fake = await startFakeB2({ buckets: { 'media-private': 'allPrivate' } });
    const storage = new B2Storage({
      applicationKeyId: fake.applicationKeyId,
      applicationKey: fake.applicationKey,
      bucketName: 'media-private',
      location: 'media/',
      apiUrl: fake.authorizeUrl,
      ...small,
    });
    // Files an old B2 script uploaded with the backblaze-b2 SDK (v2 authorize; large ones through the large-file API).
    return { storage, seedForeign: b2Seeder({ ...fake, authorizeUrl: fake.authorizeUrlFor('v2') }, 'media-private', 'media/'), cleanup: () => fake.close() };
  },
  HOSTILE_INPUT_OPTIONS,
);

if (!QUICK)
  describeStorageContract(
    'b2 (public bucket, fake B2)',
    async () => {
      const fake = await startFakeB2({ buckets: { 'media-public': 'allPublic' } });
      const storage = new B2Storage({
        applicationKeyId: fake.applicationKeyId,
        applicationKey: fake.applicationKey,
        bucketName: 'media-public',
        visibility: 'public',
        apiUrl: fake.authorizeUrl,
        ...small,
      });
      return { storage, seedForeign: b2Seeder({ ...fake, authorizeUrl: fake.authorizeUrlFor('v2') }, 'media-public'), cleanup: () => fake.close() };
    },
    HOSTILE_INPUT_OPTIONS,
  );

// The whole contract under a restricted application key, authorized through v4: one bucket, a name
// prefix equal to the location, and only the six file capabilities the backend documents.
if (!QUICK)
  describeStorageContract('b2 (restricted key: one bucket, name prefix, v4 authorize, fake B2)', async () => {
    const fake = await startFakeB2({ buckets: { 'media-restricted': 'allPrivate', 'someone-else': 'allPrivate' } });
    const key = fake.createKey({
      buckets: ['media-restricted'],
      namePrefix: 'media/',
      capabilities: ['listBuckets', 'listFiles', 'readFiles', 'shareFiles', 'writeFiles', 'deleteFiles'],
    });
    const storage = new B2Storage({ ...key, bucketName: 'media-restricted', location: 'media/', apiUrl: fake.authorizeUrlFor('v4'), ...small });
    return { storage, cleanup: () => fake.close() };
  });
