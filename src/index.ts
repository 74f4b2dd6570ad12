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
export {
  ErrorCodes,
  MediaStorageError,
  isMediaStorageError,
  isNotFound,
  isAbortError,
  redact,
  CauseSummary,
  summarizeCause,
  type MediaStorageErrorCode,
  type MediaStorageErrorOptions,
} from './core/errors.js';
export { codeFromStatus, codeFromNodeError, toMediaStorageError, type ErrorContext } from './core/error-mapping.js';
export { BaseStorage, DEFAULT_LIST_LIMIT, DEFAULT_MAX_EXPIRES_IN, screenListing, pageThrough, type WriteOptions } from './core/base.js';
export { presignUploadOf, DEFAULT_UPLOAD_EXPIRES_IN, type PresignPlan } from './core/direct-upload.js';
export { prepareMetadata, prepareCacheControl, encodeHeaderValue, decodeHeaderValue, type MetadataRules } from './core/metadata.js';
export { prepareBody, streamToBuffer, type PreparedBody } from './core/body.js';
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
} from './core/keys.js';
export {
  sniffContentType,
  contentTypeFromKey,
  resolveContentType,
  normalizeContentType,
  tryNormalizeContentType,
  contentTypeEssence,
  DEFAULT_CONTENT_TYPE,
  MAX_CONTENT_TYPE_LENGTH,
} from './core/content-type.js';
export {
  ServingRule,
  DEFAULT_SERVING_RULE,
  DEFAULT_INLINE_CONTENT_TYPES,
  isExecutableContentType,
  isActiveContent,
  USER_CONTENT_CSP,
  type ServingOptions,
  type ServingDecision,
} from './core/serving.js';
export { UrlSigner, type SignedParams } from './core/signed-url.js';
export {
  createMediaHandler,
  parseRangeHeader,
  contentDisposition,
  dispositionForStoredObject,
  type MediaHandlerOptions,
  type MediaRequestHandler,
} from './core/http-handler.js';
export { toWebHandler, type WebHandlerOptions, type WebRequestHandler } from './core/web-handler.js';
export { detectEphemeralPlatform, isEphemeralProduction } from './core/ephemeral.js';
export {
  createMediaStorage,
  createMediaStorageFromEnv,
  configFromEnv,
  parseStorageUrl,
  describeConfig,
  maskUrl,
  type StorageConfig,
  type StorageBackendOptions,
  type LocalConfig,
  type MemoryConfig,
  type S3Config,
  type CloudinaryConfig,
  type B2Config,
  type AzureConfig,
  type CreateOptions,
  type ConfigFromEnvOptions,
} from './config/index.js';
export {
  registerBackend,
  defineBackend,
  defineOptions,
  lazyStorageClass,
  resolveOptions,
  typed,
  backendDefinitions,
  type BackendDefinition,
  type BackendUrlSpec,
  type BackendEnvSpec,
  type ConfigContext,
  type OptionsOf,
  type OptionsSchema,
  type OptionSpec,
  type StorageClass,
  type StorageUrlParts,
} from './core/definition.js';
export { MirrorStorage, type MirrorStorageOptions } from './mirror/index.js';
export { syncStorages, type SyncOptions, type SyncReport, type SyncProgress, type SyncFailure } from './cli/sync.js';
export { auditKeys, formatAudit, parseKeyList, type AuditOptions, type AuditReport, type AuditEntry, type AuditStatus } from './cli/audit.js';
export { runDoctor, formatDoctor, type DoctorOptions, type DoctorReport, type DoctorCheck } from './cli/doctor.js';
export * from './avatar/index.js';
