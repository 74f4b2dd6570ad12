import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { auditKeys, formatAudit, parseKeyList, readKeyList } from '../../src/cli/audit.js';
import { runDoctor } from '../../src/cli/doctor.js';
import { main } from '../../src/cli/index.js';
import { syncStorages, type SyncEvent } from '../../src/cli/sync.js';
import { MediaStorageError } from '../../src/core/errors.js';
import type { Body, SaveOptions } from '../../src/core/types.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { listen } from '../support/http.js';
import { tempDir } from '../support/tmp.js';

/** Counts saves, and can fail every save after the first `failAfter`. */
class CountingMemory extends MemoryStorage {
  saves = 0;
  failAfter = Infinity;
  override async save(key: string, body: Body, options?: SaveOptions) {
    if (this.saves >= this.failAfter) throw new MediaStorageError('UNAVAILABLE', 'simulated outage', { backend: 'memory', key });
    this.saves++;
    return super.save(key, body, options);
  }
}

function capture(): { io: Parameters<typeof main>[1] & object; out: () => string; err: () => string } {
  let out = '';
  let err = '';
  return {
    io: { stdout: { write: (s: string) => (out += s) }, stderr: { write: (s: string) => (err += s) }, stdin: Readable.from([]), env: {} },
    out: () => out,
    err: () => err,
  };
}

describe('sync', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let source: LocalStorage;
  beforeEach(async () => {
    tmp = await tempDir('sync');
    source = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    for (let i = 0; i < 50; i++) await source.save(`profile_images/${String(i).padStart(3, '0')}.jpg`, Buffer.alloc(100 + i, i));
    await source.save('docs/empty.txt', Buffer.alloc(0), { allowEmpty: true });
  });
  afterEach(() => tmp.remove());

  it('copies everything, then nothing on a second run', async () => {
    const dest = new CountingMemory();
    const first = await syncStorages(source, dest, { concurrency: 4 });
    expect(first).toMatchObject({ scanned: 51, copied: 51, skipped: 0, failed: 0 });
    expect(dest.saves).toBe(51);
    expect((await dest.readBuffer('profile_images/049.jpg')).equals(Buffer.alloc(149, 49))).toBe(true);
    expect((await dest.stat('docs/empty.txt')).size).toBe(0);
    const second = await syncStorages(source, dest, { concurrency: 4 });
    expect(second).toMatchObject({ scanned: 51, copied: 0, skipped: 51 });
    expect(dest.saves).toBe(51);
  });

  it('resumes after an interrupted run, copying only what is left', async () => {
    const dest = new CountingMemory();
    dest.failAfter = 20;
    const broken = await syncStorages(source, dest, { concurrency: 4, attempts: 2, retryDelayMs: 1 });
    expect(broken.copied).toBe(20);
    expect(broken.failed).toBe(31);
    expect(broken.failures[0]).toMatchObject({ code: 'UNAVAILABLE' });
    dest.failAfter = Infinity;
    const resumed = await syncStorages(source, dest, { concurrency: 4 });
    expect(resumed).toMatchObject({ copied: 31, skipped: 20, failed: 0 });
    expect(dest.saves).toBe(51);
  });

  it('re-copies a changed file, honours --prefix, --dry-run and --delete', async () => {
    const dest = new CountingMemory();
    await syncStorages(source, dest);
    await source.save('profile_images/000.jpg', Buffer.alloc(500, 7));
    await dest.save('stale/old.jpg', 'left over');
    const before = dest.saves;
    const events: SyncEvent[] = [];
    const dry = await syncStorages(source, dest, { dryRun: true, delete: true, onEvent: (e) => events.push(e) });
    expect(dry).toMatchObject({ copied: 1, deleted: 1 });
    expect(events).toEqual([
      { type: 'copied', key: 'profile_images/000.jpg', size: 500 },
      { type: 'deleted', key: 'stale/old.jpg' },
    ]);
    expect(dest.saves).toBe(before);
    expect(await dest.exists('stale/old.jpg')).toBe(true);
    const prefixed = await syncStorages(source, dest, { prefix: 'docs/' });
    expect(prefixed).toMatchObject({ scanned: 1, copied: 0 });
    const real = await syncStorages(source, dest, { delete: true });
    expect(real).toMatchObject({ copied: 1, deleted: 1 });
    expect((await dest.stat('profile_images/000.jpg')).size).toBe(500);
    expect(await dest.exists('stale/old.jpg')).toBe(false);
  });

  it('compares MD5s when both sides have them, so a same-size change is copied', async () => {
    const a = new MemoryStorage();
    const b = new CountingMemory();
    await a.save('x.txt', 'aaaa');
    await b.save('x.txt', 'bbbb');
    expect(await syncStorages(a, b)).toMatchObject({ copied: 1 });
    expect((await b.readBuffer('x.txt')).toString()).toBe('aaaa');
  });

  it('the CLI prints a summary and exits 0, or 1 with the failures listed', async () => {
    const copy = await tempDir('sync-target');
    const target = copy.dir;
    const ok = capture();
    expect(await main(['sync', '--from', `file://${tmp.dir}`, '--to', `file://${target}`, '--quiet'], ok.io)).toBe(0);
    expect(ok.out()).toMatch(/51 objects: 51 copied \(.*\), 0 already there, 0 deleted, 0 failed/);
    const again = capture();
    expect(await main(['sync', '--from', `file://${tmp.dir}`, '--to', `file://${target}`, '--quiet'], again.io)).toBe(0);
    expect(again.out()).toMatch(/51 objects: 0 copied \(0 B\), 51 already there/);
    const bad = capture();
    expect(await main(['sync', '--from', `file://${tmp.dir}`], bad.io)).toBe(2);
    expect(bad.err()).toContain('sync needs --to: where to copy to');
    await copy.remove();
  });
});

describe('audit', () => {
  it('finds stored paths with no object, once per distinct path', async () => {
    const storage = new MemoryStorage();
    await storage.save('profile_images/ok.jpg', 'x');
    let checks = 0;
    const counting = Object.assign(Object.create(storage) as MemoryStorage, {
      exists: async (key: string) => {
        checks++;
        return storage.exists(key);
      },
    });
    const paths = parseKeyList(
      'profile_images/ok.jpg\n\nprofile_images/gone.jpg\r\n"profile_images/gone.jpg"\n../../etc/passwd\n/media/profile_images/ok.jpg\n',
    );
    const report = await auditKeys(counting, paths, { stripPrefix: '/media/' });
    expect(checks).toBe(2);
    expect(report).toMatchObject({ total: 5, distinct: 3, counts: { ok: 1, missing: 1, invalid: 1, error: 0 } });
    expect(formatAudit(report, 'text')).toContain('MISSING  profile_images/gone.jpg  (x2)\n');
    // Problems in key order: "." (0x2e) before "p".
    expect(JSON.parse(formatAudit(report, 'json'))).toMatchObject({
      counts: { missing: 1 },
      problems: [
        { path: '../../etc/passwd', status: 'invalid' },
        { path: 'profile_images/gone.jpg', status: 'missing', occurrences: 2 },
      ],
    });
    expect(formatAudit(report, 'csv').split('\n')[0]).toBe('path,status,occurrences,error,stored_as');
  });

  it('neutralises spreadsheet formulas in CSV output', async () => {
    const report = await auditKeys(new MemoryStorage(), ['=HYPERLINK("x").jpg']);
    expect(formatAudit(report, 'csv')).toContain(`"'=HYPERLINK(""x"").jpg"`);
  });

  it('streams: reads a list in chunks that split lines and characters, and hands on each path in key order as it is checked', async () => {
    const storage = new MemoryStorage();
    await storage.save('b/\u00e9.jpg', 'x');
    const text = 'c.jpg\r\nb/\u00e9.jpg\n\n"a.jpg"\nc.jpg\nb/\u00e9.jpg';
    const bytes = Buffer.from(text, 'utf8');
    // One byte at a time: CRLF and the two bytes of "\u00e9" arrive split.
    const chunks = Array.from(bytes, (b) => Buffer.from([b]));
    const seen: string[] = [];
    const report = await auditKeys(storage, readKeyList(Readable.from(chunks)), {
      concurrency: 3,
      onEntry: (e) => seen.push(`${e.path}:${e.status}:${e.occurrences}`),
    });
    expect(seen).toEqual(['a.jpg:missing:1', 'b/\u00e9.jpg:ok:2', 'c.jpg:missing:2']);
    expect(report).toMatchObject({ total: 5, distinct: 3, counts: { ok: 1, missing: 2 } });
    expect(report.problems.map((e) => e.path)).toEqual(['a.jpg', 'c.jpg']);
    expect(await auditKeys(storage, ['x', 'y', 'z'], { maxProblems: 1 })).toMatchObject({ counts: { missing: 3 }, problems: [{ path: 'x' }] });
  });

  it('the CLI reads keys from a file or stdin', async () => {
    const tmp = await tempDir('audit');
    await new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false }).save('a.jpg', 'x');
    const list = path.join(tmp.dir, 'keys.txt');
    await writeFile(list, 'a.jpg\nb.jpg\n');
    const run = capture();
    expect(await main(['audit', '--keys', list, '--url', `file://${tmp.dir}`, '--format', 'json', '--quiet'], run.io)).toBe(0);
    expect(JSON.parse(run.out())).toMatchObject({ total: 2, counts: { ok: 1, missing: 1 } });
    const strict = capture();
    strict.io.stdin = Readable.from(['b.jpg\n']);
    expect(await main(['audit', '--keys', '-', '--url', `file://${tmp.dir}`, '--fail-on-missing', '--quiet'], strict.io)).toBe(1);
    expect(strict.out()).toContain('MISSING  b.jpg\n');
    const csv = capture();
    expect(await main(['audit', '--keys', list, '--url', `file://${tmp.dir}`, '--format', 'csv', '--quiet'], csv.io)).toBe(0);
    // The problems only, as the migration guide's broken.csv; --all adds the ok paths.
    expect(csv.out()).toBe('path,status,occurrences,error,stored_as\nb.jpg,missing,1,,\n');
    const all = capture();
    expect(await main(['audit', '--keys', list, '--url', `file://${tmp.dir}`, '--format', 'csv', '--all', '--quiet'], all.io)).toBe(0);
    expect(all.out()).toBe('path,status,occurrences,error,stored_as\na.jpg,ok,1,,\nb.jpg,missing,1,,\n');
    await tmp.remove();
  });
});

describe('doctor', () => {
  it('gives a clean report for a served local disk, fetching the URL', async () => {
    const tmp = await tempDir('doctor');
    let storage!: LocalStorage;
    const server = await listen((req, res) => storage.handler()(req, res));
    storage = new LocalStorage({ root: tmp.dir, baseUrl: `${server.url}/media`, warnOnEphemeralDisk: false });
    const report = await runDoctor({ storage, env: {} });
    expect(report.healthy).toBe(true);
    expect(report.checks.map((c) => `${c.name}:${c.level}`)).toEqual([
      'configuration:ok',
      'durability:info',
      'write:ok',
      'read:ok',
      'url:ok',
      'cors:warn',
      'delete:ok',
    ]);
    await server.close();
    await tmp.remove();
  });

  it('fails loudly for the local disk in production on Render', async () => {
    const tmp = await tempDir('doctor-render');
    const run = capture();
    run.io.env = { NODE_ENV: 'production', RENDER: 'true', MEDIA_ROOT: tmp.dir };
    expect(await main(['doctor'], run.io)).toBe(1);
    expect(run.out()).toMatch(/FAIL {2}durability +LOCAL DISK ON RENDER IN PRODUCTION/);
    await tmp.remove();
  });

  it('reports a configuration error without a secret', async () => {
    const run = capture();
    run.io.env = { AWS_STORAGE_BUCKET_NAME: 'b', AWS_SECRET_ACCESS_KEY: 'do-not-print-me' };
    expect(await main(['doctor'], run.io)).toBe(1);
    expect(run.out()).toContain('FAIL  configuration AWS_ACCESS_KEY_ID is not set');
    expect(run.out()).not.toContain('do-not-print-me');
  });

  it('explains a write refused for bad credentials', async () => {
    class Rejecting extends MemoryStorage {
      override async save(): Promise<never> {
        throw new MediaStorageError('AUTH', 'SignatureDoesNotMatch', { backend: 'memory' });
      }
    }
    const report = await runDoctor({ storage: new Rejecting(), env: {} });
    expect(report.healthy).toBe(false);
    expect(report.checks.find((c) => c.name === 'write')).toMatchObject({ level: 'fail', detail: expect.stringContaining('The credentials were rejected') });
  });
});
