// AzureBlobStorage against Azurite beyond the contract: configuration, a missing container, bad
// credentials, blocks, direct uploads and what reaches the service.
import { createHash, randomBytes } from 'node:crypto';
import { inspect } from 'node:util';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AzureBlobStorage, decodeMetadataName, encodeMetadataName, mapAzureError } from '../../src/azure/index.js';
import { sendDirectUpload } from '../../src/testing/direct-upload.js';
import { AZURITE_KEY, startAzurite, type RunningAzurite } from '../support/azurite.js';
import { failure } from '../support/failure.js';

let azurite: RunningAzurite;
let container: string;

beforeAll(async () => {
  azurite = await startAzurite();
  container = await azurite.container('unit');
}, 60_000);
afterAll(() => azurite?.stop());

const storage = (extra: Partial<ConstructorParameters<typeof AzureBlobStorage>[0]> = {}): AzureBlobStorage =>
  new AzureBlobStorage({ connectionString: azurite.connectionString, container, location: `t${randomBytes(3).toString('hex')}/`, ...extra });

describe('configuration', () => {
  it('refuses a container name Azure would refuse, and a missing connection string, with CONFIG', async () => {
    for (const name of ['ab', 'Media', 'a--b', '-ab', 'a_b', 'x'.repeat(64)]) {
      expect(() => new AzureBlobStorage({ connectionString: azurite.connectionString, container: name }), name).toThrow(
        expect.objectContaining({ code: 'CONFIG' }),
      );
    }
    const saved = process.env.AZURE_STORAGE_CONNECTION_STRING;
    delete process.env.AZURE_STORAGE_CONNECTION_STRING;
    try {
      expect(() => new AzureBlobStorage({ container: 'media' })).toThrow(
        expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/AZURE_STORAGE_CONNECTION_STRING/) }),
      );
    } finally {
      if (saved !== undefined) process.env.AZURE_STORAGE_CONNECTION_STRING = saved;
    }
  });

  it('reads AZURE_STORAGE_CONNECTION_STRING by default', async () => {
    const saved = process.env.AZURE_STORAGE_CONNECTION_STRING;
    process.env.AZURE_STORAGE_CONNECTION_STRING = azurite.connectionString;
    try {
      const s = new AzureBlobStorage({ container });
      await s.save('from-env.txt', 'hello');
      expect((await s.readBuffer('from-env.txt')).toString()).toBe('hello');
    } finally {
      if (saved === undefined) delete process.env.AZURE_STORAGE_CONNECTION_STRING;
      else process.env.AZURE_STORAGE_CONNECTION_STRING = saved;
    }
  });
});

describe('a missing container and bad credentials', () => {
  it('a missing container is CONFIG on exists, stat, save, list and delete, never "absent"', async () => {
    const s = new AzureBlobStorage({ connectionString: azurite.connectionString, container: 'no-such-container' });
    for (const [label, call] of [
      ['exists', () => s.exists('a.txt')],
      ['stat', () => s.stat('a.txt')],
      ['save', () => s.save('a.txt', 'x')],
      ['list', () => s.list('')],
      ['delete', () => s.delete('a.txt')],
    ] as const) {
      const err = await failure(call());
      expect(err.code, label).toBe('CONFIG');
      expect(err.message, label).toMatch(/container "no-such-container" does not exist/);
    }
  });

  it('a wrong account key is AUTH, and neither the key nor the connection string is in the error or its causes', async () => {
    const wrongKey = Buffer.from(randomBytes(64)).toString('base64');
    const connectionString = azurite.connectionString.replace(AZURITE_KEY, wrongKey);
    const s = new AzureBlobStorage({ connectionString, container });
    const err = await failure(s.save('denied.txt', 'x'));
    expect(err.code).toBe('AUTH');
    const everything = `${err.message}\n${inspect(err, { depth: 10 })}\n${JSON.stringify(err)}`;
    expect(everything).not.toContain(wrongKey);
    expect(everything).not.toContain(connectionString);
    // A HEAD answer carries only the error code, which Azurite sets to AuthorizationFailure for both.
    expect(['AUTH', 'PERMISSION']).toContain((await failure(s.exists('denied.txt'))).code);
  });

  it('maps the service error codes, HEAD answers included (x-ms-error-code, no body)', () => {
    const t = { container: 'c' };
    expect(mapAzureError({ statusCode: 404, code: 'ContainerNotFound' }, t)?.code).toBe('CONFIG');
    expect(mapAzureError({ statusCode: 404, code: 'BlobNotFound' }, t)?.code).toBe('NOT_FOUND');
    expect(mapAzureError({ statusCode: 409, code: 'BlobAlreadyExists' }, t)?.code).toBe('ALREADY_EXISTS');
    expect(mapAzureError({ statusCode: 412, code: 'ConditionNotMet' }, t)?.code).toBe('ALREADY_EXISTS');
    expect(mapAzureError({ statusCode: 403, code: 'AuthenticationFailed' }, t)?.code).toBe('AUTH');
    expect(mapAzureError({ statusCode: 403, code: 'AuthorizationPermissionMismatch' }, t)?.code).toBe('PERMISSION');
    expect(mapAzureError({ statusCode: 503, code: 'ServerBusy' }, t)?.code).toBe('UNAVAILABLE');
    expect(mapAzureError({ code: 'ECONNREFUSED' }, t)?.code).toBe('UNAVAILABLE');
  });
});

describe('blocks', () => {
  it('a stream longer than a block goes up in blocks committed at once, with memory bounded by the blocks in flight', async () => {
    const s = storage({ blockSize: 1024 * 1024, concurrency: 2 });
    const data = randomBytes(5 * 1024 * 1024 + 123);
    const chunks: Buffer[] = [];
    for (let i = 0; i < data.length; i += 64 * 1024) chunks.push(data.subarray(i, i + 64 * 1024));
    const info = await s.save('big/stream.bin', Readable.from(chunks));
    expect(info.size).toBe(data.length);
    const blob = s.containerClient.getBlockBlobClient(`${s.location}big/stream.bin`);
    const blocks = await blob.getBlockList('committed');
    expect(blocks.committedBlocks?.length).toBe(6);
    expect(
      createHash('sha256')
        .update(await s.readBuffer('big/stream.bin'))
        .digest('hex'),
    ).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('a stream that fails after some blocks were staged leaves nothing visible (and the old blob intact)', async () => {
    const s = storage({ blockSize: 1024 * 1024 });
    await s.save('big/kept.bin', 'the old version');
    let sent = 0;
    const failing = new Readable({
      read() {
        if (sent++ < 40) this.push(Buffer.alloc(128 * 1024, 1));
        else this.destroy(new Error('client went away'));
      },
    });
    expect((await failure(s.save('big/kept.bin', failing))).code).toBe('INVALID_INPUT');
    expect((await s.readBuffer('big/kept.bin')).toString()).toBe('the old version');
    const fresh = new Readable({
      read() {
        if (sent++ < 80) this.push(Buffer.alloc(128 * 1024, 1));
        else this.destroy(new Error('client went away'));
      },
    });
    expect((await failure(s.save('big/never.bin', fresh))).code).toBe('INVALID_INPUT');
    expect(await s.exists('big/never.bin')).toBe(false);
  });
});

describe('metadata names', () => {
  it('names Azure can hold are stored as they are; others are escaped and read back exactly', () => {
    for (const name of ['owner', 'uploaded-by', 'a.b', 'x_y', 'msx_trick', '9lives', "it's"]) {
      const stored = encodeMetadataName(name);
      expect(stored, name).toMatch(/^[a-z_][a-z0-9_]*$/);
      expect(decodeMetadataName(stored), name).toBe(name);
    }
    expect(encodeMetadataName('owner')).toBe('owner');
    expect(encodeMetadataName('uploaded-by')).toBe('msx_uploaded_2dby');
  });
});

describe('direct uploads and signed URLs', () => {
  it('the SAS upload stores the type and disposition the serving rules decided, and a download URL asks for an attachment', async () => {
    const s = storage();
    const upload = await s.presignUpload('docs/report.pdf', { contentType: 'application/pdf', expiresIn: 300 });
    expect(upload.headers).toMatchObject({ 'x-ms-blob-type': 'BlockBlob', 'x-ms-blob-content-type': 'application/pdf' });
    expect(upload.headers['x-ms-blob-content-disposition']).toMatch(/^attachment; filename="report.pdf"/);
    expect(new URL(upload.url).searchParams.get('sp')).toBe('cw');
    const res = await sendDirectUpload(upload, Buffer.from('%PDF-1.4 hello'));
    expect(res.status).toBe(201);
    const props = await s.containerClient.getBlockBlobClient(`${s.location}docs/report.pdf`).getProperties();
    expect(props.contentType).toBe('application/pdf');
    expect(props.contentDisposition).toMatch(/^attachment/);
    const served = await fetch(await s.url('docs/report.pdf', { download: 'Q3 report.pdf' }));
    expect(served.status).toBe(200);
    expect(served.headers.get('content-disposition')).toMatch(/^attachment; filename="Q3 report.pdf"/);
    await served.arrayBuffer();
  });

  it('a SAS read URL cannot be used to write, nor an upload URL for another blob', async () => {
    const s = storage();
    await s.save('a.png', Buffer.from('x'));
    const read = await s.url('a.png', { expiresIn: 60 });
    const put = await fetch(read, { method: 'PUT', headers: { 'x-ms-blob-type': 'BlockBlob' }, body: 'overwrite' });
    expect(put.status).toBe(403);
    await put.arrayBuffer();
    expect((await s.readBuffer('a.png')).toString()).toBe('x');
  });
});
