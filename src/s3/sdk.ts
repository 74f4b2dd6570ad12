// The classes of @aws-sdk/client-s3 this backend uses, loaded so that a missing package is a CONFIG
// error naming it (a static import would fail first, with a bare ERR_MODULE_NOT_FOUND, before any
// of this package's code could say what to install). This is the ESM form: a top-level await.
// The CommonJS build loads them with require instead (sdk-cjs.ts, swapped in by tsup.config.ts).
import type * as ClientS3 from '@aws-sdk/client-s3';
import { missingPackageError } from '../core/errors.js';

const PACKAGE = '@aws-sdk/client-s3';

let sdk: typeof ClientS3;
try {
  sdk = await import('@aws-sdk/client-s3');
} catch (err) {
  throw missingPackageError(err, PACKAGE, 'media-storage/s3 (S3Storage)', 's3') ?? err;
}

export const S3Client = sdk.S3Client;
export type S3Client = ClientS3.S3Client;
export const AbortMultipartUploadCommand = sdk.AbortMultipartUploadCommand;
export type AbortMultipartUploadCommand = ClientS3.AbortMultipartUploadCommand;
export const CompleteMultipartUploadCommand = sdk.CompleteMultipartUploadCommand;
export type CompleteMultipartUploadCommand = ClientS3.CompleteMultipartUploadCommand;
export const CreateMultipartUploadCommand = sdk.CreateMultipartUploadCommand;
export type CreateMultipartUploadCommand = ClientS3.CreateMultipartUploadCommand;
export const ListMultipartUploadsCommand = sdk.ListMultipartUploadsCommand;
export type ListMultipartUploadsCommand = ClientS3.ListMultipartUploadsCommand;
export const PutObjectCommand = sdk.PutObjectCommand;
export type PutObjectCommand = ClientS3.PutObjectCommand;
export const UploadPartCommand = sdk.UploadPartCommand;
export type UploadPartCommand = ClientS3.UploadPartCommand;
export const CopyObjectCommand = sdk.CopyObjectCommand;
export type CopyObjectCommand = ClientS3.CopyObjectCommand;
export const DeleteObjectCommand = sdk.DeleteObjectCommand;
export type DeleteObjectCommand = ClientS3.DeleteObjectCommand;
export const GetObjectCommand = sdk.GetObjectCommand;
export type GetObjectCommand = ClientS3.GetObjectCommand;
export const HeadBucketCommand = sdk.HeadBucketCommand;
export type HeadBucketCommand = ClientS3.HeadBucketCommand;
export const HeadObjectCommand = sdk.HeadObjectCommand;
export type HeadObjectCommand = ClientS3.HeadObjectCommand;
export const ListObjectsV2Command = sdk.ListObjectsV2Command;
export type ListObjectsV2Command = ClientS3.ListObjectsV2Command;
