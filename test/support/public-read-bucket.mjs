// Creates the S3 test bucket and lets anyone read its objects, for stores without object ACLs
// (MinIO, buckets with ACLs disabled), where the contract's public-URL tests need a bucket policy.
// Reads the MEDIA_STORAGE_TEST_S3_* variables (docs/s3.md). Used by .github/workflows/ci.yml.
import { CreateBucketCommand, PutBucketPolicyCommand, S3Client } from '@aws-sdk/client-s3';

const env = process.env;
const bucket = env.MEDIA_STORAGE_TEST_S3_BUCKET ?? 'media-storage-test';
const client = new S3Client({
  endpoint: env.MEDIA_STORAGE_TEST_S3_ENDPOINT,
  region: env.MEDIA_STORAGE_TEST_S3_REGION ?? 'us-east-1',
  forcePathStyle: env.MEDIA_STORAGE_TEST_S3_FORCE_PATH_STYLE !== 'false',
  credentials: { accessKeyId: env.MEDIA_STORAGE_TEST_S3_ACCESS_KEY, secretAccessKey: env.MEDIA_STORAGE_TEST_S3_SECRET_KEY },
  requestChecksumCalculation: 'WHEN_REQUIRED',
});
await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((err) => {
  if (err.name !== 'BucketAlreadyOwnedByYou' && err.name !== 'BucketAlreadyExists') throw err;
});
const policy = {
  Version: '2012-10-17',
  Statement: [{ Effect: 'Allow', Principal: { AWS: ['*'] }, Action: ['s3:GetObject'], Resource: [`arn:aws:s3:::${bucket}/*`] }],
};
await client.send(new PutBucketPolicyCommand({ Bucket: bucket, Policy: JSON.stringify(policy) }));
console.log(`bucket ${bucket}: objects are publicly readable`);
