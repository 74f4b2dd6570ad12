/**
 * Adopting assets another tool uploaded: the names such a tool stored in an app's database are
 * resolved to its public IDs, so `exists`, `stat`, `read`, `url`, `delete` and the avatar
 * resolvers find them without converting the database (see docs/cloudinary.md).
 */
import type { ResourceType } from './mapping.js';

/** One asset a stored name may be, tried in order. */
export interface AdoptedAsset {
  resourceType: ResourceType;
  /** The public ID, exactly as Cloudinary gave it to the other tool. */
  publicId: string;
  /** Delivery type; default `upload`. */
  type?: 'upload' | 'authenticated' | 'private';
}

/** Where a stored name (a key the other tool wrote) may live; empty when it cannot be one of its names. */
export type AdoptNames = (storedName: string) => readonly AdoptedAsset[];

/** Options of {@link djangoCloudinaryStorage}: the prefix and resource types the Django app's storages used. */
export interface DjangoCloudinaryStorageNames {
  /**
   * django-cloudinary-storage's `PREFIX` (by default `MEDIA_URL` without its leading slash):
   * prepended to a name that does not start with it, as its storages do. Default `media/`.
   */
  prefix?: string;
  /**
   * The resource types its storages wrote, tried in this order: `MediaCloudinaryStorage` is
   * `image`, `VideoMediaCloudinaryStorage` `video`, `RawMediaCloudinaryStorage` `raw`. Default all three.
   */
  resourceTypes?: readonly ResourceType[];
}

/**
 * django-cloudinary-storage's names (1.x, `MediaCloudinaryStorage` and its video and raw
 * siblings): it uploads with `use_filename` into the folder of the name and stores the public ID
 * Cloudinary answers, so the database holds `media/profile_images/abc_q4rz1t` for an image (no
 * extension: Cloudinary keeps the format apart; six random characters from `unique_filename`) and
 * `media/docs/cv_x1y2z3.pdf` for a raw file; dotted names stay dotted (`my.photo_abc123`). Its
 * `url()`, `exists()` and `delete()` prepend the prefix to names without it and use the storage's
 * one resource type; this rule does the same, trying each resource type in turn.
 */
export function djangoCloudinaryStorage(options: DjangoCloudinaryStorageNames = {}): AdoptNames {
  let prefix = (options.prefix ?? 'media/').replace(/^\/+/, '');
  if (prefix !== '' && !prefix.endsWith('/')) prefix += '/';
  const types = options.resourceTypes ?? ['image', 'video', 'raw'];
  return (storedName) => {
    const publicId = storedName.startsWith(prefix) ? storedName : prefix + storedName;
    return types.map((resourceType) => ({ resourceType, publicId, type: 'upload' as const }));
  };
}
