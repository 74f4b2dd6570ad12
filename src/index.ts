/**
 * `media-storage` for apps: create a storage from configuration, the interface every backend
 * implements, errors, avatars, and the HTTP handlers an app mounts. Backend authors import
 * `media-storage/adapter`; sync, audit and doctor from code are in `media-storage/tools`; each
 * backend class is in its own subpath (`media-storage/s3`, ...).
 *
 * @packageDocumentation
 */
export type {
  Body,
  ByteRange,
  Capabilities,
  CopyOptions,
  DirectUpload,
  DirectUploadEnforcement,
  DirectUploadOptions,
  IfExists,
  ListAllOptions,
  ListOptions,
  ListPage,
  MediaStorage,
  ObjectInfo,
  ReadOptions,
  SaveOptions,
  SaveProgress,
  SkippedObject,
  UrlOptions,
} from './core/types.js';
export { USER_CONTENT_CSP, type ServingOptions } from './core/serving.js';
export {
  ErrorCodes,
  MediaStorageError,
  isMediaStorageError,
  isNotFound,
  isAbortError,
  type MediaStorageErrorCode,
  type MediaStorageErrorOptions,
} from './core/errors.js';
export {
  createMediaStorage,
  createMediaStorageFromEnv,
  configFromEnv,
  parseStorageUrl,
  describeConfig,
  maskUrl,
  type StorageConfig,
  type S3Config,
  type CloudinaryConfig,
  type B2Config,
  type AzureConfig,
  type CreateOptions,
  type ConfigFromEnvOptions,
} from './config/index.js';
// An app registers a third-party backend's definition (then createMediaStorage, storage URLs and
// the environment know it); writing one is media-storage/adapter's.
export { registerBackend, backendDefinitions, type BackendDefinition } from './core/definition.js';
// What an app checks an upload with before it saves ("is this really a JPEG?").
export { sniffContentType, contentTypeFromKey } from './core/content-type.js';
export { detectEphemeralPlatform, isEphemeralProduction } from './core/ephemeral.js';
export { createMediaHandler, type MediaHandlerOptions, type MediaRequestHandler } from './core/http-handler.js';
export { toWebHandler, type WebHandlerOptions, type WebRequestHandler } from './core/web-handler.js';
// Avatars are the app's reason for this package, so they are here; `media-storage/avatar` is the
// same bindings for code that imports nothing else.
export {
  escapeHtml,
  escapeXml,
  initialsOf,
  avatarColors,
  contrastRatio,
  initialsAvatarSvg,
  initialsAvatarDataUrl,
  MIN_AVATAR_CONTRAST,
  ExistenceCache,
  CachedStorage,
  withExistenceCache,
  resolveAvatar,
  resolveAvatarUrl,
  resolveAvatars,
  resolveAvatarUrls,
  initialsAvatar,
  avatarImgHtml,
  avatarImgProps,
  avatarFallbackScriptTag,
  safeImageUrl,
  safeSrcset,
  AVATAR_FALLBACK_ATTRIBUTE,
  AVATAR_FALLBACK_SCRIPT,
  createAvatarHandler,
  type AvatarPerson,
  type AvatarColors,
  type InitialsAvatarOptions,
  type ExistenceCacheOptions,
  type ExistenceCacheStats,
  type CachedExistence,
  type PrimeOptions,
  type PrimeResult,
  type PrimeForKeysOptions,
  type PrimeForKeysResult,
  type AvatarDefault,
  type AvatarEntry,
  type AvatarInput,
  type ResolveAvatarOptions,
  type ResolveAvatarsOptions,
  type ResolvedAvatar,
  type AvatarImgOptions,
  type AvatarImgProps,
  type AvatarHandlerOptions,
} from './avatar/index.js';
