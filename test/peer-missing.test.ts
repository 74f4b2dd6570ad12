// Issue 17, point 4: `import 'media-storage/s3'` in an app that has not installed the AWS SDK says
// which package to install (a CONFIG MediaStorageError), in ESM and CommonJS; and a public storage
// that never signs runs without @aws-sdk/s3-request-presigner. Against the built package (dist/),
// copied into a project whose node_modules holds only what each case installs.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { consumerProject } from './support/consumer.js';

const run = promisify(execFile);
const project = (label: string, keep: (name: string) => boolean) => consumerProject(label, keep);

const node = async (cwd: string, args: string[]): Promise<{ stdout: string; stderr: string; code: number }> => {
  try {
    const { stdout, stderr } = await run(process.execPath, args, {
      cwd,
      env: { PATH: process.env.PATH, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true' },
    });
    return { stdout, stderr, code: 0 };
  } catch (err) {
    const e = err as { stdout: string; stderr: string; code: number };
    return { stdout: e.stdout, stderr: e.stderr, code: e.code };
  }
};

describe('media-storage/s3 without the AWS SDK', () => {
  let app: Awaited<ReturnType<typeof project>>;
  beforeAll(async () => {
    app = await project('no-aws-sdk', (name) => name === 'mime-types' || name === 'mime-db');
  });
  afterAll(() => app?.remove());

  it('import names @aws-sdk/client-s3 in a CONFIG error', async () => {
    const result = await node(app.dir, [
      '--input-type=module',
      '-e',
      "try { await import('media-storage/s3'); console.log('loaded') } catch (e) { console.log(JSON.stringify({ name: e.name, code: e.code, message: e.message })) }",
    ]);
    expect(JSON.parse(result.stdout)).toEqual({
      name: 'MediaStorageError',
      code: 'CONFIG',
      message: 'media-storage/s3 (S3Storage) needs the package "@aws-sdk/client-s3", which is not installed: npm install @aws-sdk/client-s3',
    });
  });

  it('require names it too', async () => {
    const result = await node(app.dir, [
      '-e',
      "try { require('media-storage/s3'); console.log('loaded') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })) }",
    ]);
    expect(JSON.parse(result.stdout)).toMatchObject({ code: 'CONFIG', message: expect.stringContaining('npm install @aws-sdk/client-s3') });
  });

  it('the main entry still loads, and createMediaStorage says what s3 needs', async () => {
    const result = await node(app.dir, [
      '--input-type=module',
      '-e',
      "import { createMediaStorage } from 'media-storage'; try { await createMediaStorage('s3://bucket') } catch (e) { console.log(e.code, e.message) }",
    ]);
    expect(result.stdout).toContain('CONFIG');
    expect(result.stdout).toContain('@aws-sdk/client-s3');
  });
});

describe('media-storage/s3 without @aws-sdk/s3-request-presigner', () => {
  let app: Awaited<ReturnType<typeof project>>;
  beforeAll(async () => {
    app = await project('no-presigner', (name) => name !== '@aws-sdk/s3-request-presigner');
  });
  afterAll(() => app?.remove());

  it('a public storage gives plain URLs; a signed URL names the missing package', async () => {
    const script = `import { S3Storage } from 'media-storage/s3';
      const storage = new S3Storage({ bucket: 'crm-media', region: 'eu-central-1', visibility: 'public', credentials: { accessKeyId: 'AKIAEXAMPLE', secretAccessKey: 'secret' } });
      const plain = await storage.url('profile_images/a.jpg');
      const signed = await storage.url('profile_images/a.jpg', { expiresIn: 60 }).then(() => 'signed', (e) => e.code + ' ' + e.message);
      console.log(JSON.stringify({ plain, signed }));`;
    const result = await node(app.dir, ['--input-type=module', '-e', script]);
    expect(JSON.parse(result.stdout)).toEqual({
      plain: 'https://crm-media.s3.eu-central-1.amazonaws.com/profile_images/a.jpg',
      signed:
        'CONFIG signed URLs (a private storage, expiresIn or download) needs the package "@aws-sdk/s3-request-presigner", which is not installed: npm install @aws-sdk/s3-request-presigner',
    });
  });
});
