/**
 * Finding where a key's asset is: its media home, its raw home, or an adopted name; asked of the
 * Upload API (`explicit`, not rate-limited) or the Admin API, never of a delivery URL (see
 * ./delivery.ts). Recently seen locations are remembered, so url() rarely needs a lookup.
 */
import type { AdoptNames } from './adopt.js';
import { CloudinaryApiError } from './errors.js';
import type { AssetRef, KeyHomes } from './mapping.js';
import type { AdminResource, CloudinaryClient } from './sdk.js';

const LOCATION_CACHE_SIZE = 1000;

/** Where a key was found (one of its homes, or an adopted asset), with the asset's details. */
export interface Located {
  /** The asset, with its format for images and videos. */
  ref: AssetRef;
  version?: number;
  bytes?: number;
  etag?: string;
  createdAt?: string;
}

export type MediaSlot = { state: 'absent' } | { state: 'ours'; asset: AdminResource } | { state: 'foreign' };

/** Whether a failed lookup means "no such asset" (and not a wrong cloud name, key or secret). */
function isMissingAsset(err: unknown): boolean {
  return err instanceof CloudinaryApiError && err.httpCode === 404 && /not found/i.test(err.message);
}

/** A located asset from what the API said of it. */
export function located(ref: AssetRef, asset: Pick<AdminResource, 'version' | 'bytes' | 'etag' | 'created_at' | 'format'>): Located {
  return {
    ref: ref.resourceType === 'raw' ? ref : { ...ref, format: asset.format ?? ref.format },
    version: asset.version,
    bytes: asset.bytes,
    etag: asset.etag,
    createdAt: asset.created_at,
  };
}

/** Looks assets up for one storage and remembers where its keys were found. */
export class AssetLocator {
  /** Where recently seen keys live, and their versions. Bounded, oldest first out. */
  private readonly locations = new Map<string, Located>();

  constructor(
    private readonly client: CloudinaryClient,
    private readonly existsVia: 'upload-api' | 'admin',
    private readonly adopt: AdoptNames | undefined,
  ) {}

  /**
   * An asset's details, or `undefined` when there is none: the Upload API's explicit (no action,
   * not rate-limited) or the Admin API's resource. A wrong cloud name, key or secret is an error,
   * never "absent".
   */
  async lookup(ref: AssetRef): Promise<AdminResource | undefined> {
    const options = this.client.callOptions({ resource_type: ref.resourceType, type: ref.type ?? this.client.deliveryType });
    try {
      if (this.existsVia === 'admin') {
        const found = await this.client.call((sdk) => sdk.api.resource(ref.publicId, options));
        this.client.noteRateLimit(found);
        return found;
      }
      return await this.client.call((sdk) => sdk.uploader.explicit(ref.publicId, options));
    } catch (err) {
      if (isMissingAsset(err)) return undefined;
      throw err;
    }
  }

  /** Whether a key's media home holds this key's asset, another key's (same public ID, other format), or nothing. */
  async probeMedia(media: AssetRef): Promise<MediaSlot> {
    const asset = await this.lookup(media);
    if (!asset) return { state: 'absent' };
    return asset.format === media.format ? { state: 'ours', asset } : { state: 'foreign' };
  }

  /** The assets an adopted name may be, leaving out the key's own homes (already looked at). */
  adoptedCandidates(key: string, homes: KeyHomes): AssetRef[] {
    if (!this.adopt) return [];
    const own = [homes.media, homes.raw].filter(Boolean).map((h) => `${h!.resourceType}|${h!.publicId}|${this.client.deliveryType}`);
    return this.adopt(key)
      .map((a) => ({ resourceType: a.resourceType, publicId: a.publicId, type: a.type ?? 'upload' }))
      .filter((a) => !own.includes(`${a.resourceType}|${a.publicId}|${a.type}`));
  }

  /** Where the key is: its media home when that holds this key's format, then its raw home, then an adopted asset. */
  async locate(key: string, homes: KeyHomes): Promise<Located | undefined> {
    let found: Located | undefined;
    if (homes.media) {
      const slot = await this.probeMedia(homes.media);
      if (slot.state === 'ours') found = located(homes.media, slot.asset);
    }
    if (!found) {
      const raw = await this.lookup(homes.raw);
      if (raw) found = located(homes.raw, raw);
    }
    for (const candidate of found ? [] : this.adoptedCandidates(key, homes)) {
      const asset = await this.lookup(candidate);
      if (asset) {
        found = located(candidate, asset);
        break;
      }
    }
    this.remember(key, found);
    return found;
  }

  /** Where the key was last seen, if remembered. */
  remembered(key: string): Located | undefined {
    return this.locations.get(key);
  }

  /** Records where a key is (or, with `undefined`, forgets it: it changed behind the cache). */
  remember(key: string, where: Located | undefined): void {
    this.locations.delete(key);
    if (!where) return;
    this.locations.set(key, where);
    if (this.locations.size > LOCATION_CACHE_SIZE) this.locations.delete(this.locations.keys().next().value!);
  }
}
