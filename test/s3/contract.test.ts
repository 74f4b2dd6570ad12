import { describeStorageContract } from '../../src/testing/index.js';
import { HOSTILE_INPUT_OPTIONS } from '../../src/testing/hostile-keys.js';
import { s3Seeder } from '../support/foreign-seeders.js';
import { externalTarget, serverMaxKeyBytes, startS3Target, targetLabel } from '../support/s3-target.js';

// s3rver keeps each object in a file named after the key's last segment plus "._S3rver_object"
// (15 bytes), so a segment over 240 bytes exceeds the file system's 255-byte names and s3rver
// fails (ENAMETOOLONG). S3 itself limits only the whole key (1,024 bytes): those keys are stored
// on real servers, and only s3rver leaves them out (2 of the 217).
const S3RVER_SEGMENT_LIMIT = 255 - '._S3rver_object'.length;
const storableOnS3rver = (key: string): boolean => key.split('/').every((segment) => Buffer.byteLength(segment) <= S3RVER_SEGMENT_LIMIT);
// s3rver also keeps objects as files under their key's path, so names with "." or empty segments
// (foreign objects: "./x", "a//b") are resolved away or refused by it, and its continuation
// tokens do not get past a name with a control character (the next page is the same one again),
// and it decodes x-amz-copy-source with decodeURI, which leaves "%2B" and "%25" encoded, so no
// copy of a name with "+" or "%" finds its source. S3 servers store, page through and copy them
// all, so those foreign names are tested there only.

const s3rverHolds = (key: string): boolean =>
  storableOnS3rver(key) &&
  !/[\u0000-\u001f\u007f;,?:@&=+$#%]/.test(key) &&
  key.split('/').every((segment, i, all) => segment !== '.' && segment !== '..' && (segment !== '' || i === all.length - 1));

// A server that stores shorter keys than S3's 1,024 bytes (MEDIA_STORAGE_TEST_S3_MAX_KEY_BYTES)
// leaves out the odd keys that would not fit under the test prefixes (up to 128 bytes).
const fitsTheServer = (key: string): boolean => serverMaxKeyBytes >= 1024 || Buffer.byteLength(key) + 128 <= serverMaxKeyBytes;
const oddKeys = HOSTILE_INPUT_OPTIONS.rejectOrStoreKeys?.filter(fitsTheServer);

// The whole contract against a real S3 server: s3rver started by the helper, or the server the
// MEDIA_STORAGE_TEST_S3_* variables name (Ceph RGW in .ci/run, MinIO in GitHub Actions), with the
// hostile corpus and the full concurrency bar (64 saves to one key, 1,000 to distinct keys). On
// s3rver on this shared 2-core machine they add about 5 s to the file (5.5 s → 10.4 s; the 1,000
// saves take 3.5 s, the 215 odd keys 2.8 s), so the full counts stay.
describeStorageContract(
  `s3 (${targetLabel}, public)`,
  async () => {
    const target = await startS3Target('contract');
    return {
      storage: target.storage({ visibility: 'public' }),
      // Objects a Django app (django-storages, boto3) or the S3 console put in the same bucket.
      seedForeign: s3Seeder(target.client, target.bucket, target.location, {
        acl: process.env.MEDIA_STORAGE_TEST_S3_ACL === 'false' ? undefined : 'public-read',
        canHold: (key) => Buffer.byteLength(key) <= serverMaxKeyBytes && (externalTarget || s3rverHolds(key)),
      }),
      cleanup: () => target.stop(),
    };
  },
  // s3rver serves any URL whatever its signature, so the tampered-URL test cannot pass there:
  // the signed URL tests skip visibly on it and run on servers that check signatures, and so do the
  // direct-upload tests of what the store enforces (s3rver checks no presigned signature or POST
  // policy). Its writes are made whole-or-nothing in test/support/s3rver-child.mjs, as S3's are, so
  // the reads-during-writes tests run on it too.
  externalTarget
    ? { ...HOSTILE_INPUT_OPTIONS, rejectOrStoreKeys: oddKeys }
    : {
        ...HOSTILE_INPUT_OPTIONS,
        rejectOrStoreKeys: oddKeys?.filter(storableOnS3rver),
        capabilities: { signedUrls: false },
        checkDirectUploadEnforcement: false,
      },
);
