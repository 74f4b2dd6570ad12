import { randomBytes } from 'node:crypto';
import { describe, it } from 'vitest';
import { CloudinaryStorage } from '../../src/cloudinary/index.js';
import { describeStorageContract } from '../../src/testing/index.js';

// Opt-in: runs the contract suite against the real Cloudinary account in CLOUDINARY_URL, under a
// throwaway folder that is emptied afterwards. Without CLOUDINARY_URL it is reported as skipped.
// It uploads about 1,100 small files and spends a few dozen Admin API calls (listing).
const liveUrl = process.env.CLOUDINARY_URL;
const live = !!liveUrl && !/upload_prefix=http%3A%2F%2F127\.|upload_prefix=http:\/\/127\./.test(liveUrl);

if (!live) {
  describe('MediaStorage contract: cloudinary (live account)', () => {
    it.skip('runs only when CLOUDINARY_URL points at a real account (cloudinary://API_KEY:API_SECRET@CLOUD_NAME)', () => {});
  });
} else {
  // Short: Cloudinary public IDs stop at 255 characters, and the suite's longest key is about 240.
  const folder = `msc-${randomBytes(3).toString('hex')}`;
  describeStorageContract(
    'cloudinary (live account)',
    () => {
      const storage = new CloudinaryStorage({
        folder,
        deliveryType: (process.env.CLOUDINARY_DELIVERY_TYPE as 'upload' | 'authenticated' | undefined) ?? 'upload',
      });
      return {
        storage,
        cleanup: async () => {
          for await (const info of storage.listAll('')) await storage.delete(info.key).catch(() => undefined);
          storage.close();
        },
      };
    },
    // Free plans refuse raw files over 10 MB: the large-body round trip uses 8 MiB.
    { slowTestTimeout: 600_000, largeBodyBytes: 8 * 1024 * 1024 },
  );
}
