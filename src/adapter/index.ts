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
