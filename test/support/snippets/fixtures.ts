// The servers documentation snippets run against, and the environment that points them there.
// Every snippet gets the default fixtures; a block that needs another says so with
// `<!-- snippet: needs: NAME -->`, and NAME is registered here (a new backend's emulator, say).
import { FakeCloudinary } from '../fakes/cloudinary-server.js';
import { startAzurite } from '../azurite.js';
import { startS3Target } from '../s3-target.js';

export interface Fixture {
  /** Variables the snippet's process gets. */
  env: Record<string, string>;
  stop: () => Promise<void>;
}

type FixtureFactory = () => Promise<Fixture>;

export const FIXTURES: Record<string, FixtureFactory> = {
  /**
   * S3 (s3rver, or the server of MEDIA_STORAGE_TEST_S3_*): the environment's storage
   * (MEDIA_STORAGE_URL and the django-storages AWS_* variables), and AWS_ENDPOINT_URL_S3, so an
   * S3Storage configured for AWS itself talks to it.
   */
  s3: async () => {
    const target = await startS3Target('snippets');
    const { accessKeyId, secretAccessKey } = target.credentials;
    const prefix = target.location.replace(/\/$/, '');
    return {
      env: {
        MEDIA_STORAGE_URL: `s3://${encodeURIComponent(accessKeyId)}:${encodeURIComponent(secretAccessKey)}@${target.bucket}/${prefix}?endpoint=${encodeURIComponent(target.endpoint)}&region=${target.region}`,
        AWS_STORAGE_BUCKET_NAME: target.bucket,
        AWS_ACCESS_KEY_ID: accessKeyId,
        AWS_SECRET_ACCESS_KEY: secretAccessKey,
        AWS_REGION: target.region,
        AWS_LOCATION: prefix,
        AWS_S3_ENDPOINT_URL: target.endpoint,
        AWS_ENDPOINT_URL_S3: target.endpoint,
      },
      stop: () => target.stop(),
    };
  },
  /** Cloudinary: the fake of test/support/fakes, as CLOUDINARY_URL (its upload_prefix points the SDK there). */
  cloudinary: async () => {
    const account = { cloudName: 'snippet-cloud', apiKey: '333333333333333', apiSecret: 'snippet-secret-0123456789ab' };
    const fake = await new FakeCloudinary([account]).start();
    return { env: { CLOUDINARY_URL: fake.cloudinaryUrl(account.cloudName) }, stop: () => fake.stop() };
  },
  /** Azure: Azurite (the tests' own, npm package azurite) with the docs' container "media", as AZURE_STORAGE_CONNECTION_STRING. */
  azure: async () => {
    const azurite = await startAzurite();
    await azurite.service.getContainerClient('media').createIfNotExists();
    return { env: { AZURE_STORAGE_CONNECTION_STRING: azurite.connectionString }, stop: () => azurite.stop() };
  },
  /**
   * B2's variables, with values of the right shape and no server: blocks that only configure B2
   * run; those that call B2 are compile-only (the fake B2 needs its URL passed as apiUrl).
   */
  'b2-names': async () => ({
    env: { B2_APPLICATION_KEY_ID: '0012345678abcdef0000000001', B2_APPLICATION_KEY: 'K001snippetsnippetsnippetsnippet', B2_BUCKET_NAME: 'crm-media' },
    stop: async () => undefined,
  }),
};

export const DEFAULT_FIXTURES = ['s3', 'cloudinary', 'azure', 'b2-names'];
