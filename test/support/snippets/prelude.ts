// What a documentation snippet may use without defining it: the app around it (an Express `app`, a
// `db`, the `agents` of a list page, an upload stream, credentials from the environment) and the
// library names a page imported in an earlier block. An entry is put in front of a snippet only
// for a name the compiler finds free in it (used, neither imported nor declared). Values are real (an Express app, a PNG, a
// MemoryStorage), so the snippets run, not only compile.

export interface PreludeEntry {
  /** The identifier the snippet uses. */
  name: string;
  /** Import lines the declaration needs (with `__`-prefixed names, so they never clash with a snippet's). */
  imports?: string[];
  /** TypeScript that declares `name` (types and values). */
  declaration: string;
  /** Other entries this one uses. */
  uses?: string[];
}

// An 8x8 JPEG (sharp decodes it: withImages checks what it stores): the docs' uploads are profile photos named .jpg.
const JPEG_BASE64 =
  '/9j/2wBDABALDA4MChAODQ4SERATGCgaGBYWGDEjJR0oOjM9PDkzODdASFxOQERXRTc4UG1RV19iZ2hnPk1xeXBkeFxlZ2P/2wBDARESEhgVGC8aGi9jQjhCY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2NjY2P/wAARCAAIAAgDASIAAhEBAxEB/8QAFQABAQAAAAAAAAAAAAAAAAAAAAX/xAAUEAEAAAAAAAAAAAAAAAAAAAAA/8QAFQEBAQAAAAAAAAAAAAAAAAAABAX/xAAUEQEAAAAAAAAAAAAAAAAAAAAA/9oADAMBAAIRAxEAPwCiAnnP/9k=';
const PNG_BASE64 = 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==';

export const PRELUDE: PreludeEntry[] = [
  // Library names used by a block after the one that imported them.
  { name: 'S3Storage', imports: ["import { S3Storage } from 'media-storage/s3';"], declaration: '' },
  { name: 'LocalStorage', imports: ["import { LocalStorage } from 'media-storage/local';"], declaration: '' },
  { name: 'MemoryStorage', imports: ["import { MemoryStorage } from 'media-storage/memory';"], declaration: '' },
  { name: 'createMediaStorage', imports: ["import { createMediaStorage } from 'media-storage';"], declaration: '' },
  { name: 'StorageLayer', imports: ["import { StorageLayer } from 'media-storage/layers';"], declaration: '' },
  { name: 'OperationCall', imports: ["import type { OperationCall } from 'media-storage/layers';"], declaration: '' },
  { name: 'NextCall', imports: ["import type { NextCall } from 'media-storage/layers';"], declaration: '' },

  // The app around the snippets.
  { name: '__png', declaration: `const __png = Buffer.from('${PNG_BASE64}', 'base64');` },
  { name: '__jpeg', declaration: `const __jpeg = Buffer.from('${JPEG_BASE64}', 'base64');` },
  {
    name: 'avatar',
    imports: ["import { resolveAvatar as __resolveAvatar } from 'media-storage';"],
    uses: ['storage', 'agent'],
    declaration: 'const avatar = await __resolveAvatar(storage, agent.profileImage, { person: agent });',
  },
  {
    name: 'res',
    imports: [
      "import { IncomingMessage as __IncomingMessage, ServerResponse as __ServerResponse } from 'node:http';",
      "import { Socket as __Socket } from 'node:net';",
    ],
    declaration: 'const res = new __ServerResponse(new __IncomingMessage(new __Socket()));',
  },
  {
    name: 'storage',
    imports: ["import { MemoryStorage as __MemoryStorage } from 'media-storage/memory';"],
    declaration: "const storage = new __MemoryStorage({ baseUrl: '/media' });",
  },
  { name: 's3', imports: ["import { MemoryStorage as __MemoryStorage } from 'media-storage/memory';"], declaration: 'const s3 = new __MemoryStorage();' },
  {
    name: 'createStorage',
    imports: [
      "import { MemoryStorage as __MemoryStorage } from 'media-storage/memory';",
      "import type { MediaStorage as __MediaStorage } from 'media-storage';",
    ],
    declaration: 'const createStorage = (): __MediaStorage => new __MemoryStorage();',
  },
  { name: 'app', imports: ["import __express from 'express';"], declaration: 'const app = __express();' },
  {
    name: 'agents',
    declaration:
      "interface __Agent { id: string; name: string; photo: string | null; profileImage: string | null }\nconst agents: __Agent[] = [{ id: '1', name: 'Ada Lovelace', photo: 'profile_images/abc.jpg', profileImage: 'profile_images/abc.jpg' }, { id: '2', name: 'Grace Hopper', photo: null, profileImage: null }];",
  },
  {
    name: 'people',
    uses: ['agents'],
    declaration: 'const people = agents;',
  },
  {
    name: 'upload',
    imports: ["import { Readable as __Readable } from 'node:stream';"],
    uses: ['__jpeg'],
    declaration: 'const upload = __Readable.from([__jpeg]);',
  },
  {
    name: 'images',
    imports: ["import { withImages as __withImages } from 'media-storage/images';", "import { MemoryStorage as __MemoryStorage } from 'media-storage/memory';"],
    uses: ['__jpeg'],
    declaration:
      "// A storage through withImages (docs/images.md), holding Ada's photo.\nconst images = __withImages(new __MemoryStorage({ baseUrl: '/media' }), { variants: { avatar: { width: 64, height: 64, fit: 'cover', format: 'webp', densities: [1, 2] } } });\nawait images.save('profile_images/abc.jpg', __jpeg);",
  },
  {
    name: 'agent',
    declaration: "const agent = { id: '7', name: 'Ada Lovelace', profileImage: 'profile_images/abc.jpg', profile_image: 'media/profile_images/abc_x1y2z3' };",
  },
  {
    name: 'db',
    uses: ['agents'],
    declaration:
      'const db = { agents: { findAll: async () => agents, update: async (id: string, changes: Record<string, unknown>) => Object.assign(agents.find((a) => a.id === id) ?? {}, changes) } };',
  },
  {
    name: 'uploadStream',
    imports: ["import { Readable as __Readable } from 'node:stream';"],
    uses: ['__jpeg'],
    declaration: 'const uploadStream = __Readable.from([__jpeg]);',
  },
  {
    name: 'fileStream',
    imports: ["import { Readable as __Readable } from 'node:stream';"],
    uses: ['__jpeg'],
    declaration: 'const fileStream = __Readable.from([__jpeg]);',
  },
  {
    name: 'req',
    imports: ["import { Readable as __Readable } from 'node:stream';", "import type { IncomingMessage as __IncomingMessage } from 'node:http';"],
    uses: ['__jpeg'],
    declaration: '// An upload arriving on a Node request.\nconst req = __Readable.from([__jpeg]) as unknown as __IncomingMessage;',
  },
  { name: 'file', uses: ['__jpeg'], declaration: "const file = new File([__jpeg], 'photo.jpg', { type: 'image/jpeg' });" },
  { name: 'id', declaration: "const id = '7';" },
  { name: 'metrics', declaration: 'const metrics = { timing: (name: string, ms: number): void => void [name, ms] };' },
  { name: 'audit', declaration: 'const audit = { log: (...args: unknown[]): void => void args };' },
  { name: 'bucket', declaration: "const bucket = process.env.AWS_STORAGE_BUCKET_NAME ?? 'crm-media';" },
  { name: 'bucketName', declaration: "const bucketName = 'crm-media';" },
  { name: 'accountId', declaration: "const accountId = '0123456789abcdef';" },
  { name: 'accessKeyId', declaration: "const accessKeyId = process.env.AWS_ACCESS_KEY_ID ?? 'AKIAEXAMPLE';" },
  { name: 'secretAccessKey', declaration: "const secretAccessKey = process.env.AWS_SECRET_ACCESS_KEY ?? 'secret';" },
  { name: 'hmacAccessId', declaration: "const hmacAccessId = 'GOOG1EXAMPLEEXAMPLEEXAMPLE';" },
  { name: 'hmacSecret', declaration: "const hmacSecret = 'bGoa+V7g/yqDXvKRqq+JTFn4uQZbPiQJo4pf9RzJ';" },
  { name: 'keyId', declaration: "const keyId = '0012345678abcdef0000000001';" },
  { name: 'applicationKeyId', declaration: "const applicationKeyId = '0012345678abcdef0000000001';" },
  { name: 'applicationKey', declaration: "const applicationKey = 'K001secretsecretsecretsecret';" },
  // A backend of one's own, for the contract-suite templates.
  {
    name: 'MyStorage',
    imports: ["import { MemoryStorage as __MemoryStorage } from 'media-storage/memory';"],
    declaration: 'class MyStorage extends __MemoryStorage {}',
  },
  { name: 'opts', declaration: "const opts = { prefix: 'contract/' };" },
  { name: 'myStoreHasFolderObjects', declaration: 'const myStoreHasFolderObjects = true;' },
  {
    name: 'nativeClient',
    declaration:
      'const nativeClient = { put: async (name: string, bytes: Uint8Array, options: { contentType?: string; metadata?: Record<string, string> }): Promise<void> => void [name, bytes, options] };',
  },
];

/**
 * What `storage` (and the like) is on a page that configured one: the docs of a backend use the
 * storage they set up in an earlier block.
 */
export const PRELUDE_BY_FILE: Record<string, PreludeEntry[]> = {
  'docs/s3.md': [
    {
      name: 'storage',
      imports: ["import { S3Storage as __S3Storage } from 'media-storage/s3';"],
      declaration:
        "// The storage of the page's first block (AWS_ENDPOINT_URL_S3 points the SDK at the test's S3 server).\nconst storage = new __S3Storage({ bucket: process.env.AWS_STORAGE_BUCKET_NAME!, region: 'eu-central-1', visibility: 'public' });",
    },
  ],
  'docs/azure.md': [
    {
      name: 'storage',
      imports: ["import { AzureBlobStorage as __AzureBlobStorage } from 'media-storage/azure';"],
      declaration:
        "// The storage of the page's first block (AZURE_STORAGE_CONNECTION_STRING points at the test's Azurite).\nconst storage = new __AzureBlobStorage({ container: 'media', location: 'crm/' });",
    },
  ],
  'docs/images.md': [{ name: 'storage', uses: ['images'], declaration: 'const storage = images;' }],
  'docs/cloudinary.md': [
    {
      name: 'storage',
      imports: ["import { CloudinaryStorage as __CloudinaryStorage } from 'media-storage/cloudinary';"],
      declaration: "const storage = new __CloudinaryStorage({ folder: 'media' });",
    },
  ],
};

/** The prelude a snippet needs for the names it uses without defining them: import lines, then declarations. */
export function preludeFor(freeNames: ReadonlySet<string>, file: string): { imports: string[]; declarations: string[] } {
  const entries = [...(PRELUDE_BY_FILE[file] ?? []), ...PRELUDE.filter((e) => !(PRELUDE_BY_FILE[file] ?? []).some((o) => o.name === e.name))];
  const wanted: PreludeEntry[] = [];
  const want = (name: string): void => {
    const entry = entries.find((e) => e.name === name);
    if (!entry || wanted.includes(entry)) return;
    for (const dep of entry.uses ?? []) want(dep);
    wanted.push(entry);
  };
  for (const name of freeNames) want(name);
  return { imports: [...new Set(wanted.flatMap((e) => e.imports ?? []))], declarations: wanted.map((e) => e.declaration).filter(Boolean) };
}
