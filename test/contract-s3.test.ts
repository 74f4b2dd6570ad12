import { describeStorageContract } from '../src/testing/index.js';
import { HOSTILE_INPUT_OPTIONS } from './hostile/options.js';
import { externalTarget, startS3Target, targetLabel } from './helpers/s3-target.js';

// The whole contract against a real S3 server: s3rver started by the helper, or the server the
// MEDIA_STORAGE_TEST_S3_* variables name (Ceph RGW in .ci/run, MinIO in GitHub Actions).
describeStorageContract(
  `s3 (${targetLabel}, public)`,
  async () => {
    const target = await startS3Target('contract');
    return { storage: target.storage({ visibility: 'public' }), cleanup: () => target.stop() };
  },
  // s3rver serves any URL whatever its signature, so the tampered-URL test cannot pass there:
  // the signed URL tests skip visibly on it and run on servers that check signatures. s3rver also
  // writes objects in place, so a concurrent reader can see a torn one; real S3 servers cannot.
  { ...HOSTILE_INPUT_OPTIONS, ...(externalTarget ? {} : { capabilities: { signedUrls: false }, checkReadsDuringWrites: false }) },
);
