/**
 * `media-storage/adapter`: what a backend author builds a {@link MediaStorage} from. An app does
 * not need it: apps import from `media-storage` (see docs/adding-a-backend.md for a backend's walk-through).
 *
 * @packageDocumentation
 */

export { BaseStorage, DEFAULT_LIST_LIMIT, DEFAULT_MAX_EXPIRES_IN, screenListing, pageThrough, type WriteOptions } from '../core/base.js';
export { prepareBody, streamToBuffer, type PreparedBody } from '../core/body.js';
export {
  validateKey,
  tryValidateKey,
  validatePrefix,
  keyProblem,
  listedNameProblem,
  compareKeys,
  normalizationTwins,
  normalizeKey,
  tryNormalizeKey,
  normalizePrefix,
  normalizeLocation,
  encodeKeyPath,
  joinPrefix,
  splitKey,
  MAX_KEY_BYTES,
  MAX_SEGMENT_BYTES,
} from '../core/keys.js';
export {
  resolveContentType,
  normalizeContentType,
  tryNormalizeContentType,
  contentTypeEssence,
  DEFAULT_CONTENT_TYPE,
  MAX_CONTENT_TYPE_LENGTH,
} from '../core/content-type.js';
export {
  ServingRule,
  DEFAULT_SERVING_RULE,
  DEFAULT_INLINE_CONTENT_TYPES,
  isExecutableContentType,
  isActiveContent,
  contentDisposition,
  type ServingDecision,
} from '../core/serving.js';
export { parseRangeHeader, dispositionForStoredObject } from '../core/http-handler.js';
export { prepareMetadata, prepareCacheControl, encodeHeaderValue, decodeHeaderValue, type MetadataRules } from '../core/metadata.js';
export { presignUploadOf, DEFAULT_UPLOAD_EXPIRES_IN, type PresignPlan } from '../core/direct-upload.js';
export { UrlSigner, type SignedParams } from '../core/signed-url.js';
export { codeFromStatus, codeFromNodeError, toMediaStorageError, type ErrorContext } from '../core/error-mapping.js';
export { redact, CauseSummary, summarizeCause } from '../core/errors.js';
export {
  defineBackend,
  defineOptions,
  registerBackend,
  backendDefinitions,
  lazyStorageClass,
  resolveOptions,
  typed,
  type BackendDefinition,
  type BackendUrlSpec,
  type BackendEnvSpec,
  type ConfigContext,
  type OptionsOf,
  type OptionsSchema,
  type OptionSpec,
  type StorageClass,
  type StorageUrlParts,
} from '../core/definition.js';
export { encodeCursor, decodeCursor, encodeCursorState, decodeCursorState } from '../core/cursor.js';
export { requestedDownload, downloadFilename } from '../core/download.js';
export { forEachConcurrent, mapConcurrent } from '../core/pool.js';
export { importPeer, requirePeer, lazyPeer, missingPeerError, type PeerPackage } from '../core/peer.js';
export { PeekableBody, bodyChunks, toChunk } from '../core/body.js';
export { StorageWrapper, MEDIA_STORAGE_MEMBERS } from '../core/wrapper.js';
export { alreadyExists } from '../core/base.js';
export type { ErrorMapping, ErrorMapper } from '../core/error-mapping.js';
