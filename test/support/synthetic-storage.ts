/**
 * A backend of generated objects for sync at scale (bench/sync-scale.bench.ts, test/cli/sync-scale.test.ts):
 * it lists millions of keys without storing them. Object `i` is `obj/<i, 8 digits>.jpg` with a size
 * and an MD5-shaped etag computed from `i`; a store "holds" it when its bit is set, so a sync's
 * destination records what arrives in one byte per object (how often each was saved) and lists
 * back exactly what it holds, in key order. `stale` objects (`obj/<i>.old`, which no source has)
 * are what `--delete` must remove.
 *
 * It goes through BaseStorage like any backend: listings are screened, keys checked, bodies prepared.
 */
import { Readable } from 'node:stream';
import { BaseStorage, type WriteOptions } from '../../src/core/base.js';
import { streamToBuffer, type PreparedBody } from '../../src/core/body.js';
import type { Capabilities, ListPage, ObjectInfo, ReadOptions } from '../../src/core/types.js';

export interface SyntheticOptions {
  /** Index range: objects 0 .. count-1 may exist. */
  count: number;
  /** Which objects exist at the start: all (default), none, or those the function picks. */
  holds?: 'all' | 'none' | ((i: number) => boolean);
  /** Which stale objects (`.old`) exist at the start; default none. */
  stale?: (i: number) => boolean;
  /** List in a scrambled order and declare `sortedListing: false` (as Cloudinary does). */
  unsorted?: boolean;
}

const DIGITS = 8;
const EXT = { jpg: '.jpg', old: '.old' } as const;
const JPEG_HEAD = Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46, 0]);

/** The key of object `i` (or of its stale twin). */
export function syntheticKey(i: number, kind: keyof typeof EXT = 'jpg'): string {
  return `obj/${String(i).padStart(DIGITS, '0')}${EXT[kind]}`;
}

/** Object `i`'s size: 100 to 1,123 bytes. */
export function syntheticSize(i: number): number {
  return 100 + (((i * 2654435761) >>> 0) % 1024);
}

function etagOf(i: number): string {
  return (((i * 2654435761) >>> 0).toString(16) + i.toString(16)).padStart(32, '0').slice(-32);
}

function parse(key: string): { i: number; kind: keyof typeof EXT } | undefined {
  const m = /^obj\/(\d{8})\.(jpg|old)$/.exec(key);
  return m ? { i: Number(m[1]), kind: m[2] as keyof typeof EXT } : undefined;
}

export class SyntheticStorage extends BaseStorage {
  readonly name = 'synthetic';
  readonly capabilities: Readonly<Capabilities>;
  readonly count: number;
  /** Per object: 1 when held. */
  private readonly held: Uint8Array;
  private readonly staleHeld: Uint8Array;
  /** Per object: how many times a save stored it (up to 255). */
  readonly saves: Uint8Array;
  private readonly unsorted: boolean;
  /** Listing calls answered, and objects read. */
  listCalls = 0;
  reads = 0;
  deletes = 0;

  constructor(options: SyntheticOptions) {
    super();
    this.count = options.count;
    this.held = new Uint8Array(options.count);
    this.staleHeld = new Uint8Array(options.count);
    this.saves = new Uint8Array(options.count);
    const holds = options.holds ?? 'all';
    if (holds === 'all') this.held.fill(1);
    else if (typeof holds === 'function') for (let i = 0; i < options.count; i++) this.held[i] = holds(i) ? 1 : 0;
    if (options.stale) for (let i = 0; i < options.count; i++) this.staleHeld[i] = options.stale(i) ? 1 : 0;
    this.unsorted = !!options.unsorted;
    this.capabilities = Object.freeze({
      publicUrls: true,
      signedUrls: false,
      downloadUrls: false,
      rangeReads: false,
      serverSideCopy: false,
      metadata: false,
      atomicCreate: false,
      md5Etag: true,
      ...(this.unsorted ? { sortedListing: false } : {}),
    });
  }

  /** Whether object `i` (or its stale twin) is held. */
  holds(i: number, kind: keyof typeof EXT = 'jpg'): boolean {
    return (kind === 'jpg' ? this.held : this.staleHeld)[i] === 1;
  }

  private info(i: number, kind: keyof typeof EXT): ObjectInfo {
    return {
      key: syntheticKey(i, kind),
      size: kind === 'jpg' ? syntheticSize(i) : 10,
      contentType: kind === 'jpg' ? 'image/jpeg' : 'application/octet-stream',
      etag: kind === 'jpg' ? etagOf(i) : etagOf(-i - 1),
    };
  }

  /** The i-th slot of the listing order: object `i >> 1`, its `.jpg` then its `.old`. Scrambled when unsorted. */
  private slotAt(position: number): number {
    if (!this.unsorted) return position;
    // A fixed permutation of the object indices (multiplying by an odd number modulo a power of
    // two is one), walked within the count; the kind stays in place.
    const objects = this.count;
    let size = 1;
    while (size < objects) size *= 2;
    let i = position >> 1;
    do i = (i * 40503 + 1) % size;
    while (i >= objects);
    return (i << 1) | (position & 1);
  }

  protected async listObjects(prefix: string, options: { cursor?: string; limit: number }): Promise<ListPage> {
    this.listCalls++;
    const items: ObjectInfo[] = [];
    let position = options.cursor ? Number(options.cursor) : 0;
    const end = this.count * 2;
    for (; position < end && items.length < options.limit; position++) {
      const slot = this.slotAt(position);
      const i = slot >> 1;
      const kind = slot & 1 ? 'old' : 'jpg';
      if (!(kind === 'jpg' ? this.held : this.staleHeld)[i]) continue;
      const info = this.info(i, kind);
      if (info.key.startsWith(prefix)) items.push(info);
    }
    return position < end ? { items, cursor: String(position) } : { items };
  }

  private body(i: number): Buffer {
    const data = Buffer.alloc(syntheticSize(i), i & 0xff);
    JPEG_HEAD.copy(data);
    return data;
  }

  protected async readObject(key: string, _options: ReadOptions): Promise<Readable> {
    return Readable.from([await this.readObjectBuffer(key, _options)]);
  }

  protected override async readObjectBuffer(key: string, _options: ReadOptions): Promise<Buffer> {
    const at = parse(key);
    if (!at || !this.holds(at.i, at.kind)) throw Object.assign(new Error('no such object'), { code: 'ENOENT' });
    this.reads++;
    return at.kind === 'jpg' ? this.body(at.i) : Buffer.alloc(10);
  }

  protected async statObject(key: string): Promise<ObjectInfo | undefined> {
    const at = parse(key);
    return at && this.holds(at.i, at.kind) ? this.info(at.i, at.kind) : undefined;
  }

  protected async writeObject(key: string, body: PreparedBody, _options: WriteOptions): Promise<ObjectInfo> {
    const at = parse(key);
    if (!at || at.i >= this.count) throw Object.assign(new Error(`synthetic: ${key} is not one of its keys`), { code: 'EINVAL' });
    const data = body.buffer ?? (await streamToBuffer(body.stream()));
    if (at.kind === 'jpg') {
      if (data.length !== syntheticSize(at.i)) throw new Error(`synthetic: ${key} arrived with ${data.length} bytes, not ${syntheticSize(at.i)}`);
      this.held[at.i] = 1;
      this.saves[at.i] = Math.min(255, this.saves[at.i]! + 1);
    } else {
      this.staleHeld[at.i] = 1;
    }
    return this.info(at.i, at.kind);
  }

  protected async deleteObject(key: string): Promise<void> {
    const at = parse(key);
    if (!at) return;
    this.deletes++;
    (at.kind === 'jpg' ? this.held : this.staleHeld)[at.i] = 0;
  }

  protected async objectUrl(key: string): Promise<string> {
    return `https://synthetic.invalid/${key}`;
  }
}
