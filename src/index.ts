export type {
  Body,
  ByteRange,
  Capabilities,
  CopyOptions,
  IfExists,
  ListOptions,
  ListPage,
  MediaStorage,
  ObjectInfo,
  ReadOptions,
  SaveOptions,
  SaveProgress,
  UrlOptions,
} from './core/types.js';
export {
  ErrorCodes,
  MediaStorageError,
  isMediaStorageError,
  isNotFound,
  isAbortError,
  redact,
  type MediaStorageErrorCode,
  type MediaStorageErrorOptions,
} from './core/errors.js';
export { codeFromStatus, codeFromNodeError, toMediaStorageError, type ErrorContext } from './core/error-mapping.js';
export { BaseStorage, DEFAULT_LIST_LIMIT, type WriteOptions } from './core/base.js';
export { prepareBody, streamToBuffer, type PreparedBody } from './core/body.js';
export {
  normalizeKey,
  tryNormalizeKey,
  normalizePrefix,
  normalizeLocation,
  encodeKeyPath,
  joinPrefix,
  splitKey,
  MAX_KEY_BYTES,
  MAX_SEGMENT_BYTES,
} from './core/keys.js';
export {
  sniffContentType,
  contentTypeFromKey,
  resolveContentType,
  isActiveContent,
  DEFAULT_CONTENT_TYPE,
  USER_CONTENT_CSP,
} from './core/content-type.js';
export { UrlSigner, type SignedParams } from './core/signed-url.js';
export {
  createMediaHandler,
  parseRangeHeader,
  contentDisposition,
  type MediaHandlerOptions,
  type MediaRequestHandler,
} from './core/http-handler.js';
export { detectEphemeralPlatform, isEphemeralProduction } from './core/ephemeral.js';
export * from './avatar/index.js';
