import { CloudinaryStorage } from '../../src/cloudinary/index.js';
import { describeStorageContract } from '../../src/testing/index.js';
import { FakeCloudinary } from '../support/fakes/cloudinary-server.js';
import { HOSTILE_INPUT_OPTIONS } from '../../src/testing/hostile-keys.js';
import http from 'node:http';
import cloudinary from 'cloudinary';
import { cloudinarySeeder } from '../support/foreign-seeders.js';
import { variants } from '../support/matrix.js';

// The hostile corpus and the full concurrency bar (64 saves to one key, 1,000 to distinct keys):
// against the fake Cloudinary on this 2-core machine the 1,000 saves take 2-3.5 s per run, the 217 odd
// keys 1-2.5 s, so the full counts stay.

// The official SDK signs and sends every call to the fake Cloudinary (upload_prefix in the
// CLOUDINARY_URL, as a user behind a proxy would configure it); delivery URLs, which the SDK writes
// for res.cloudinary.com, reach the fake through the injected fetch.
// Both folder modes: fixed (accounts made before June 2024) and dynamic (the default since), the
// storage finding out which one by itself. The fake's CDN caches every delivery answer per exact URL.
const RUNS = [
  { deliveryType: 'upload', folderMode: 'fixed' },
  { deliveryType: 'authenticated', folderMode: 'fixed' },
  { deliveryType: 'upload', folderMode: 'dynamic' },
] as const;

for (const { deliveryType, folderMode } of variants(RUNS)) {
  describeStorageContract(
    `cloudinary (${deliveryType}, ${folderMode} folders, fake Cloudinary)`,
    async () => {
      const fake = await new FakeCloudinary([
        { cloudName: 'contract-cloud', apiKey: '123456789012345', apiSecret: 'contract-secret-abcdefghijkl', folderMode },
      ]).start();
      // An account with a larger Admin API budget than the free plan's 500 calls an hour: the hostile
      // corpus lists each of its 217 odd keys (3 Admin API calls each, one per resource type). Running
      // out of budget is tested in cloudinary.test.ts.
      fake.rateLimit.limit = fake.rateLimit.remaining = 10_000;
      const storage = new CloudinaryStorage({
        cloudinaryUrl: fake.cloudinaryUrl('contract-cloud'),
        folder: 'ms',
        deliveryType,
        // 6 MiB chunks: the suite's 10 MiB bodies go through the chunked upload protocol.
        chunkSize: 6 * 1024 * 1024,
        fetch: fake.fetch,
      });
      // Another app's uploads through the official SDK, signed with the same account.
      const agent = new http.Agent();
      const seedForeign = cloudinarySeeder(
        cloudinary.v2 as never,
        {
          cloud_name: 'contract-cloud',
          api_key: '123456789012345',
          api_secret: 'contract-secret-abcdefghijkl',
          upload_prefix: fake.url,
          type: deliveryType,
          agent,
        },
        'ms/',
      );
      return {
        storage,
        fetch: fake.fetch,
        seedForeign,
        cleanup: async () => {
          agent.destroy();
          storage.close();
          await fake.stop();
        },
      };
    },
    HOSTILE_INPUT_OPTIONS,
  );
}
