import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDoctor } from '../../src/cli/doctor.js';
import { syncStorages } from '../../src/cli/sync.js';
import { LocalStorage } from '../../src/local/index.js';
import type { S3Storage } from '../../src/s3/index.js';
import { startHttpFaultProxy, type HttpFaultProxy } from '../support/http-fault-proxy.js';
import { serverChecksSignatures, startS3Target, targetLabel, type S3TestTarget } from '../support/s3-target.js';
import { tempDir } from '../support/tmp.js';
import { QUICK } from '../support/matrix.js';

// 2,500 in a quick run: still three listing pages of S3's 1,000.
const FILES = QUICK ? 2_500 : 10_000;

// Issue 7's migration path against a real S3 server: 10,000 small files from a local folder, an
// interrupted run that resumes, and a second run that sends no PUT (counted at an HTTP proxy
// between the SDK and the server, so it is what really went over the wire).
describe(`sync from the local disk to S3 (${targetLabel})`, () => {
  let target: S3TestTarget;
  let proxy: HttpFaultProxy;
  let source: LocalStorage;
  let dest: S3Storage;
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  const sizes = new Map<string, number>();
  const puts = (): number => proxy.requests.filter((r) => r.method === 'PUT' || (r.method === 'POST' && /[?&]uploads?\b/.test(r.url))).length;

  beforeAll(async () => {
    target = await startS3Target('sync');
    proxy = await startHttpFaultProxy(target.endpoint);
    dest = target.storage({ endpoint: proxy.url });
    tmp = await tempDir('sync-s3');
    source = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    // 1-50 KB files in 100 folders, the shape of a profile_images/ tree.
    const pool = randomBytes(50 * 1024);
    for (let i = 0; i < FILES; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, FILES - i) }, async (_, j) => {
          const n = i + j;
          const size = 1024 + ((n * 7919) % (49 * 1024));
          const key = `profile_images/${String(n % 100).padStart(2, '0')}/${String(n).padStart(5, '0')}.jpg`;
          sizes.set(key, size);
          await source.save(key, pool.subarray(0, size));
        }),
      );
    }
  }, 120_000);

  afterAll(async () => {
    await proxy?.close();
    await target?.stop();
    await tmp?.remove();
  }, 120_000);

  it(`copies ${FILES.toLocaleString('en-US')} files, resumes after an interruption, and a second run sends no PUT`, async () => {
    // First run: stopped after about a third of the files.
    const controller = new AbortController();
    const interrupted = await syncStorages(source, dest, {
      concurrency: 16,
      signal: controller.signal,
      onProgress: (p) => {
        if (p.copied >= FILES / 3) controller.abort();
      },
    });
    // An interrupted run resolves with what it did (the CLI prints it), flagged as interrupted.
    expect(interrupted.interrupted).toBe(true);
    expect(interrupted.failed).toBe(0);
    const afterInterrupt = new Map<string, number>();
    for await (const info of dest.listAll()) afterInterrupt.set(info.key, info.size);
    expect(afterInterrupt.size).toBeGreaterThanOrEqual(FILES / 3);
    expect(afterInterrupt.size).toBeLessThan(FILES);
    // Whatever landed is whole: saves are atomic, so no partial object is visible.
    for (const [key, size] of afterInterrupt) expect(size, key).toBe(sizes.get(key));

    // Second run: copies only what is left.
    const resumed = await syncStorages(source, dest, { concurrency: 16 });
    expect(resumed.failed).toBe(0);
    expect(resumed.copied).toBe(FILES - afterInterrupt.size);
    expect(resumed.skipped).toBe(afterInterrupt.size);
    const all = new Map<string, number>();
    for await (const info of dest.listAll()) all.set(info.key, info.size);
    expect(all).toEqual(sizes);
    const sample = [...sizes.keys()].at(-1)!;
    expect(Buffer.compare(await dest.readBuffer(sample), await source.readBuffer(sample))).toBe(0);

    // Third run: nothing to do, and not a single PUT on the wire.
    const before = puts();
    const requestsBefore = proxy.requests.length;
    const third = await syncStorages(source, dest, { concurrency: 16 });
    expect(third).toMatchObject({ scanned: FILES, copied: 0, skipped: FILES, failed: 0 });
    expect(puts() - before).toBe(0);
    // Only listing requests (ListObjectsV2 pages; a server may answer fewer than 1,000 keys a page).
    const thirdRun = proxy.requests.slice(requestsBefore);
    expect(thirdRun.length).toBeGreaterThanOrEqual(Math.ceil(FILES / 1000));
    expect(thirdRun.filter((r) => !(r.method === 'GET' && /[?&]list-type=2\b/.test(r.url))).map((r) => `${r.method} ${r.url}`)).toEqual([]);
  }, 600_000);
});

describe(`doctor against S3 (${targetLabel})`, () => {
  let target: S3TestTarget;
  beforeAll(async () => {
    target = await startS3Target('doctor');
  }, 120_000);
  afterAll(() => target?.stop(), 120_000);

  const url = (secret: string): string => {
    const endpoint = encodeURIComponent(target.endpoint);
    const location = target.location.replace(/\/$/, '');
    return `s3://${encodeURIComponent(target.credentials.accessKeyId)}:${encodeURIComponent(secret)}@${target.bucket}/${location}?region=${target.region}&endpoint=${endpoint}&forcePathStyle=true&visibility=private`;
  };

  it('gives a clean report for the test server, configured by a storage URL', async () => {
    const report = await runDoctor({ url: url(target.credentials.secretAccessKey), env: {} });
    const failed = report.checks.filter((c) => c.level === 'fail');
    expect(failed, JSON.stringify(failed)).toEqual([]);
    expect(report.healthy).toBe(true);
    expect(report.backend).toBe('s3');
    expect(report.checks.map((c) => c.name)).toEqual(expect.arrayContaining(['configuration', 'write', 'read', 'url', 'delete']));
    expect(JSON.stringify(report)).not.toContain(target.credentials.secretAccessKey);
  });

  it.skipIf(!serverChecksSignatures)('fails clearly with a wrong secret (needs a server that checks signatures)', async () => {
    const wrong = 'wrong-secret-1234567890';
    const report = await runDoctor({ url: url(wrong), env: {} });
    expect(report.healthy).toBe(false);
    const write = report.checks.find((c) => c.name === 'write');
    expect(write?.level).toBe('fail');
    expect(write?.detail).toMatch(/credentials were rejected/);
    expect(JSON.stringify(report)).not.toContain(wrong);
  });
});
