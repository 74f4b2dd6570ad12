// The CommonJS form of sdk-load.ts: require, which CommonJS can catch.
import type * as ClientS3 from '@aws-sdk/client-s3';
import { requirePeer } from '../core/peer.js';
import { S3_PEER } from './config.js';

export const sdk: typeof ClientS3 = requirePeer(() => require('@aws-sdk/client-s3') as typeof ClientS3, S3_PEER);
