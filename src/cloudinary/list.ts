/**
 * Listing: a key's asset is an image, video or raw asset, and the Admin API lists each resource
 * type on its own, sorted by public ID; a listing merges the three, in key order. The cursor
 * records, per resource type, Cloudinary's cursor of the current page and how much of it was
 * returned.
 */
import { decodeCursorState, encodeCursorState } from '../core/cursor.js';
import { compareKeys } from '../core/keys.js';
import type { ListPage, ObjectInfo, SkippedObject } from '../core/types.js';
import { located, type AssetLocator } from './locate.js';
import { keyOf, publicIdPrefix, type AssetRef, type ResourceType } from './mapping.js';
import type { AdminResource, CloudinaryClient } from './sdk.js';

const ADMIN_PAGE_SIZE = 500;
const RESOURCE_TYPES: readonly ResourceType[] = ['image', 'video', 'raw'];

/** What a listing needs of its storage. */
export interface ListContext {
  readonly client: CloudinaryClient;
  readonly folder: string;
  /** Remembers where listed keys live, so url() of a listed key needs no lookup. */
  readonly locator: AssetLocator;
  /** What list reports of a key's asset. */
  infoOf(key: string, resource: AdminResource): ObjectInfo;
}

interface ListSourceState {
  /** Cloudinary's cursor of the current page; absent for the first page. */
  c?: string;
  /** Entries of the current page already returned. */
  n: number;
  /** No entries left. */
  d?: boolean;
}

type ListCursor = Record<ResourceType, ListSourceState>;

interface ListSource {
  type: ResourceType;
  pageCursor?: string;
  consumed: number;
  items: ObjectInfo[];
  /** Assets of the pages loaded for this listing call that no key names. */
  skipped: SkippedObject[];
  next?: string;
}

/** One page of keys under `prefix`, merged from the three resource types in key order. */
export async function listAssets(ctx: ListContext, prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
  const state = options.cursor ? decodeCursorState(options.cursor, isListCursor) : undefined;
  const sources: ListSource[] = [];
  for (const type of RESOURCE_TYPES) {
    const s = state?.[type];
    if (s?.d) continue;
    const source: ListSource = { type, pageCursor: s?.c, consumed: 0, items: [], skipped: [] };
    await loadPage(ctx, source, prefix, s?.c);
    // A resumed page was loaded (and its skipped assets reported) by the previous call.
    if (s) source.skipped = [];
    source.items.splice(0, s?.n ?? 0);
    source.consumed = s?.n ?? 0;
    sources.push(source);
  }
  const items: ObjectInfo[] = [];
  let lastKey: string | undefined;
  for (;;) {
    // Every source must show its next entry before the smallest one can be chosen.
    for (const source of sources) {
      while (source.items.length === 0 && source.next !== undefined) await loadPage(ctx, source, prefix, source.next);
    }
    if (items.length >= options.limit) break;
    let best: ListSource | undefined;
    for (const source of sources) {
      if (source.items.length > 0 && (!best || compareKeys(source.items[0]!.key, best.items[0]!.key) < 0)) best = source;
    }
    if (!best) break;
    const item = best.items.shift()!;
    best.consumed++;
    // A key briefly in both homes (while a save moves it) is listed once.
    if (item.key !== lastKey) items.push(item);
    lastKey = item.key;
  }
  const skipped = sources.flatMap((s) => s.skipped);
  const reported = skipped.length > 0 ? { skipped } : {};
  const more = sources.some((s) => s.items.length > 0 || s.next !== undefined);
  if (!more) return { items, ...reported };
  const next = {} as ListCursor;
  for (const type of RESOURCE_TYPES) {
    const source = sources.find((s) => s.type === type);
    next[type] = !source || (source.items.length === 0 && source.next === undefined) ? { n: 0, d: true } : { c: source.pageCursor, n: source.consumed };
  }
  return { items, ...reported, cursor: encodeCursorState(next) };
}

/** The shape {@link listAssets} gives its cursors: a source state per resource type. */
function isListCursor(value: unknown): value is ListCursor {
  if (typeof value !== 'object' || value === null) return false;
  return RESOURCE_TYPES.every((type) => {
    const s = (value as Partial<Record<ResourceType, Partial<ListSourceState>>>)[type];
    return (
      typeof s === 'object' &&
      s !== null &&
      Number.isInteger(s.n) &&
      (s.n as number) >= 0 &&
      (s.c === undefined || typeof s.c === 'string') &&
      (s.d === undefined || typeof s.d === 'boolean')
    );
  });
}

/** Fetches one Admin API page of a resource type into `source` (sorted by key, filtered to the prefix). */
async function loadPage(ctx: ListContext, source: ListSource, prefix: string, cursor: string | undefined): Promise<void> {
  const { client, folder } = ctx;
  const page = await client.call((sdk) =>
    sdk.api.resources(
      client.callOptions({
        resource_type: source.type,
        type: client.deliveryType,
        prefix: cloudinaryPrefix(folder, prefix, source.type),
        max_results: ADMIN_PAGE_SIZE,
        ...(cursor ? { next_cursor: cursor } : {}),
      }),
    ),
  );
  client.noteRateLimit(page);
  source.pageCursor = cursor;
  source.consumed = 0;
  source.next = page.next_cursor || undefined;
  const items: ObjectInfo[] = [];
  const skipped: SkippedObject[] = [];
  for (const r of page.resources ?? []) {
    const key = keyOf({ resourceType: r.resource_type, publicId: r.public_id, format: r.format }, folder);
    if (key === undefined) {
      // Inside the folder but not a key's asset (another tool's public ID): reported, not dropped.
      if (r.public_id.startsWith(folder + prefix))
        skipped.push({
          name: `${r.public_id.slice(folder.length)}${r.format ? `.${r.format}` : ''}`,
          reason: 'unmapped',
          message: `the Cloudinary ${r.resource_type} asset with public ID ${JSON.stringify(r.public_id)} does not map back to a key`,
          size: r.bytes,
        });
      continue;
    }
    if (!key.startsWith(prefix)) continue;
    // Names that are not keys are screened (and reported) by the core.
    items.push(ctx.infoOf(key, r));
    // Its version too, so url() of a listed key needs no lookup.
    const ref: AssetRef =
      r.resource_type === 'raw'
        ? { resourceType: 'raw', publicId: r.public_id }
        : { resourceType: r.resource_type as ResourceType, publicId: r.public_id, format: r.format };
    ctx.locator.remember(key, located(ref, r));
  }
  // Cloudinary sorts a prefixed listing by public ID; the key order can differ inside a page
  // (`a-b.jpg` < `a.jpg`, public IDs `a-b` > `a`), so each page is put in key order.
  items.sort((a, b) => compareKeys(a.key, b.key));
  source.items = items;
  source.skipped.push(...skipped);
}

/** The public-ID prefix covering every key under `prefix` for a resource type. */
function cloudinaryPrefix(folder: string, prefix: string, type: ResourceType): string {
  let path = folder + prefix;
  if (type !== 'raw') {
    // Media public IDs lack the extension: a prefix reaching into one ("a.j") must stop before its dot.
    const slash = path.lastIndexOf('/');
    const dot = path.lastIndexOf('.');
    if (dot > slash) path = path.slice(0, dot);
  }
  return publicIdPrefix(path);
}
