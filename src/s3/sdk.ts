// The classes of @aws-sdk/client-s3 this backend uses, from the SDK as sdk-load.ts loads it.
import type * as ClientS3 from '@aws-sdk/client-s3';
import { importPeer, lazyPeer } from '../core/peer.js';
import { sdk } from './sdk-load.js';

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

/** @aws-sdk/s3-presigned-post, an optional dependency needed only for size-capped direct uploads. */
export const loadPresignedPost: () => Promise<typeof import('@aws-sdk/s3-presigned-post')> = lazyPeer(() => import('@aws-sdk/s3-presigned-post'), {
  packages: '@aws-sdk/s3-presigned-post',
  usedBy: 'presignUpload with maxSize',
  backend: 's3',
});

/**
 * @aws-sdk/s3-request-presigner, loaded on the first signed URL: a public storage that never
 * signs (plain URLs, no presigned uploads) runs without it. `what` is the feature that asked.
 */
export function loadPresigner(what: string): Promise<typeof import('@aws-sdk/s3-request-presigner')> {
  return importPeer(() => import('@aws-sdk/s3-request-presigner'), { packages: '@aws-sdk/s3-request-presigner', usedBy: what, backend: 's3' });
}
