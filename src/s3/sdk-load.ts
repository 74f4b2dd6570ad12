// Loads @aws-sdk/client-s3 so that a missing package is a CONFIG error naming it: a static import
// would fail first, with a bare ERR_MODULE_NOT_FOUND, before any of this package's code could say
// what to install. This is the ESM form, a top-level await; the CommonJS build takes
// sdk-load-cjs.ts in its place (tsup.config.ts), since CommonJS has no top-level await.
import type * as ClientS3 from '@aws-sdk/client-s3';
import { importPeer } from '../core/peer.js';
import { S3_PEER } from './config.js';

export const sdk: typeof ClientS3 = await importPeer(() => import('@aws-sdk/client-s3'), S3_PEER);
