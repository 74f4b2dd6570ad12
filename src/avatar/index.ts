export { escapeHtml, escapeXml } from './escape.js';
export {
  initialsOf,
  avatarColors,
  contrastRatio,
  initialsAvatarSvg,
  initialsAvatarDataUrl,
  MIN_AVATAR_CONTRAST,
  type AvatarPerson,
  type AvatarColors,
  type InitialsAvatarOptions,
} from './initials.js';
export {
  ExistenceCache,
  type ExistenceCacheOptions,
  type ExistenceCacheStats,
  type CachedExistence,
  type PrimeOptions,
  type PrimeResult,
  type PrimeForKeysOptions,
  type PrimeForKeysResult,
} from './existence-cache.js';
export { CachedStorage, withExistenceCache } from './cached-storage.js';
export {
  resolveAvatar,
  resolveAvatarUrl,
  resolveAvatars,
  resolveAvatarUrls,
  initialsAvatar,
  type AvatarDefault,
  type AvatarEntry,
  type AvatarInput,
  type ResolveAvatarOptions,
  type ResolveAvatarsOptions,
  type ResolvedAvatar,
} from './resolve.js';
export {
  avatarImgHtml,
  avatarImgProps,
  avatarFallbackScriptTag,
  safeImageUrl,
  safeSrcset,
  AVATAR_FALLBACK_ATTRIBUTE,
  AVATAR_FALLBACK_SCRIPT,
  type AvatarImgOptions,
  type AvatarImgProps,
} from './img.js';
export { createAvatarHandler, type AvatarHandlerOptions } from './handler.js';
