// Issue 17, point 4: Ctrl-C during `media-storage sync` to S3, in a real process. The transfer in
// flight is aborted cleanly (against a server that lists multipart uploads, such as the Ceph RGW
// of .ci/run: none is left), the summary is printed and the exit code is 130.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { open, readdir, readFile, readlink } from 'node:fs/promises';
import path from 'node:path';
import { HeadObjectCommand, ListMultipartUploadsCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serverListsMultipartUploads, startS3Target, targetLabel, type S3TestTarget } from '../support/s3-target.js';
import { tempDir } from '../support/tmp.js';

const CLI = path.resolve('dist/cli.js');
const BIG = 120 * 1024 * 1024;

describe(`sync interrupted by Ctrl-C (${targetLabel})`, () => {
  let target: S3TestTarget;
  let tmp: Awaited<ReturnType<typeof tempDir>>;

  beforeAll(async () => {
    target = await startS3Target('sync-interrupt');
    tmp = await tempDir('sync-interrupt');
    // One file large enough to be in flight (a multipart upload) when Ctrl-C comes.
    const file = await open(path.join(tmp.dir, 'video.bin'), 'w');
    const chunk = randomBytes(1024 * 1024);
    for (let i = 0; i < BIG / chunk.length; i++) await file.write(chunk);
    await file.close();
  }, 120_000);
  afterAll(async () => {
    await target?.stop();
    await tmp?.remove();
  }, 60_000);

  const uploadsInProgress = async (): Promise<number> =>
    ((await target.client.send(new ListMultipartUploadsCommand({ Bucket: target.bucket, Prefix: target.location }))).Uploads ?? []).length;

  it('aborts the transfer in flight, leaves no multipart upload, prints the summary and exits 130', async () => {
    const { accessKeyId, secretAccessKey } = target.credentials;
    const to = `s3://${encodeURIComponent(accessKeyId)}:${encodeURIComponent(secretAccessKey)}@${target.bucket}/${target.location}?endpoint=${encodeURIComponent(target.endpoint)}&region=${target.region}${process.env.MEDIA_STORAGE_TEST_S3_ACL === 'false' ? '&acl=none' : ''}`;
    const child = spawn(process.execPath, [CLI, 'sync', '--from', `file://${tmp.dir}`, '--to', to], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

    // Ctrl-C once the upload is under way: seen at the server where it lists uploads, else after a moment.
    const deadline = Date.now() + 30_000;
    while (!stderr.includes('sync ') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    if (serverListsMultipartUploads) {
      while ((await uploadsInProgress()) === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await uploadsInProgress(), 'a multipart upload in flight before Ctrl-C').toBe(1);
    } else {
      // A server that does not list uploads (s3rver): the CLI's own read of the file tells, on
      // Linux, from the offset of its descriptor (some of the file sent, not all); else a moment.
      const readOffset = async (): Promise<number | undefined> => {
        try {
          for (const fd of await readdir(`/proc/${child.pid}/fd`)) {
            if ((await readlink(`/proc/${child.pid}/fd/${fd}`).catch(() => '')).endsWith('video.bin')) {
              return Number(/^pos:\s*(\d+)/m.exec(await readFile(`/proc/${child.pid}/fdinfo/${fd}`, 'utf8'))?.[1] ?? 0);
            }
          }
          return 0;
        } catch {
          return undefined;
        }
      };
      if ((await readOffset()) === undefined) await new Promise((r) => setTimeout(r, 1500));
      else while (((await readOffset()) ?? 0) < 8 * 1024 * 1024 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    }
    child.kill('SIGINT');
    const code = await exited;

    expect(stderr).toContain('Interrupted: aborting the copies in flight');
    expect(stdout).toMatch(/^INTERRUPTED after 1 objects: 0 copied \(0 B\), 0 already there, 0 deleted, 0 failed, 1 interrupted, in /m);
    expect(stdout).toContain('INTERRUPTED video.bin: aborted, nothing kept; copied by the next run');
    expect(code).toBe(130);
    // Nothing is visible under the key, and (where the server can say) no parts are left.
    const head = await target.client
      .send(new HeadObjectCommand({ Bucket: target.bucket, Key: `${target.location}video.bin` }))
      .catch((err: { $metadata?: { httpStatusCode?: number } }) => err.$metadata?.httpStatusCode);
    expect(head).toBe(404);
    if (serverListsMultipartUploads) expect(await uploadsInProgress()).toBe(0);
  }, 90_000);
});
