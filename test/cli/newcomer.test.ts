// Issue 17, point 4: the CLI as a new user meets it. Each test names the finding it covers.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditFormatter, auditKeys, formatAudit } from '../../src/cli/audit.js';
import { main } from '../../src/cli/index.js';
import { ProgressReporter } from '../../src/cli/progress.js';
import { syncStorages } from '../../src/cli/sync.js';
import { configFromEnv, findEnvTypos, storageUrlOptions } from '../../src/config/index.js';
import { backendDefinitions } from '../../src/core/definition.js';
import { MediaStorageError } from '../../src/core/errors.js';
import type { Body, SaveOptions } from '../../src/core/types.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { mapS3Error, S3Storage } from '../../src/s3/index.js';
import { tempDir } from '../support/tmp.js';

const run = promisify(execFile);
const VERSION = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const CLI = path.resolve('dist/cli.js');

function capture(env: NodeJS.ProcessEnv = {}) {
  const out: Array<{ text: string; at: number }> = [];
  const err: Array<{ text: string; at: number }> = [];
  return {
    io: {
      stdout: { write: (s: string) => out.push({ text: s, at: performance.now() }) },
      stderr: { write: (s: string) => err.push({ text: s, at: performance.now() }) },
      stdin: Readable.from([]),
      env,
    },
    out: () => out.map((o) => o.text).join(''),
    err: () => err.map((o) => o.text).join(''),
    outTimes: () => out,
  };
}

describe('help and version', () => {
  for (const command of ['doctor', 'sync', 'audit']) {
    it(`${command} --help prints the command's options and exits 0; --version prints the version`, async () => {
      const help = capture();
      expect(await main([command, '--help'], help.io)).toBe(0);
      expect(help.out()).toContain(`media-storage ${command}`);
      expect(help.out()).toMatch(/Options:\n {2}--/);
      expect(help.err()).toBe('');
      const short = capture();
      expect(await main([command, '-h'], short.io)).toBe(0);
      const version = capture();
      expect(await main([command, '--version'], version.io)).toBe(0);
      expect(version.out()).toBe(`${VERSION}\n`);
    });
  }

  it('media-storage --version and -v print the version', async () => {
    for (const flag of ['--version', '-v']) {
      const run = capture();
      expect(await main([flag], run.io)).toBe(0);
      expect(run.out()).toBe(`${VERSION}\n`);
    }
  });

  it('the top-level help explains --delete (destructive), --checksum, --quiet, the exit codes and every storage URL option', async () => {
    const help = capture();
    expect(await main(['--help'], help.io)).toBe(0);
    const text = help.out();
    expect(text).toMatch(/--delete +DESTRUCTIVE/);
    expect(text).toMatch(/--checksum +compare MD5s/);
    expect(text).toMatch(/--quiet +no progress/);
    expect(text).toMatch(/Exit codes: 0 success; 1 problems found.*2 wrong usage or configuration; 130 interrupted/s);
    for (const definition of backendDefinitions()) {
      for (const [name, { deprecated }] of storageUrlOptions(definition))
        if (!deprecated) expect(text, `${definition.name} option ${name}`).toMatch(new RegExp(`\\n {6}${name} +\\S`));
    }
  });

  it('an unknown option names the command and its options', async () => {
    const run = capture();
    expect(await main(['doctor', '--verbose'], run.io)).toBe(2);
    expect(run.err()).toContain('unknown option --verbose for doctor; its options: --url, --json, --timeout');
    expect(run.err()).toContain('See: media-storage doctor --help');
  });
});

describe('storage URLs and options a new user gets wrong', () => {
  it('?endpoint=host:port without a scheme is CONFIG saying to add it, not UNKNOWN "Invalid URL"', async () => {
    const run = capture();
    expect(await main(['sync', '--from', 'memory://', '--to', 's3://bucket?endpoint=127.0.0.1:9000'], run.io)).toBe(2);
    expect(run.err()).toContain(
      'CONFIG: --to option endpoint must be an http:// or https:// URL (got "127.0.0.1:9000"): add the scheme, e.g. http://127.0.0.1:9000',
    );
    expect(() => new S3Storage({ bucket: 'b', endpoint: 'minio:9000' })).toThrow(
      /^s3: endpoint must be an http:\/\/ or https:\/\/ URL \(got "minio:9000"\): add the scheme, e.g. http:\/\/minio:9000/,
    );
    const err = (() => {
      try {
        new S3Storage({ bucket: 'b', endpoint: 'minio:9000' });
      } catch (e) {
        return e as MediaStorageError;
      }
    })();
    expect(err?.code).toBe('CONFIG');
  });

  it('credentials with an undefined accessKeyId are CONFIG naming the option', () => {
    const attempt = (credentials: unknown) => {
      try {
        new S3Storage({ bucket: 'b', credentials: credentials as never });
        return undefined;
      } catch (e) {
        return e as MediaStorageError;
      }
    };
    const missing = attempt({ accessKeyId: undefined, secretAccessKey: 'x' });
    expect(missing).toMatchObject({ code: 'CONFIG', message: expect.stringContaining('credentials.accessKeyId is undefined') });
    expect(attempt({ accessKeyId: 'AKIA', secretAccessKey: '' })).toMatchObject({
      code: 'CONFIG',
      message: expect.stringContaining('credentials.secretAccessKey is empty'),
    });
    expect(attempt({ accessKeyId: 'AKIA', secretAccessKey: 'secret' })).toBeUndefined();
  });

  it('a HEAD\'s bare 403 (no body: the SDK says "Unknown") is explained, not "failed: Unknown"', () => {
    const mapped = mapS3Error({ name: '403', message: 'Unknown', $metadata: { httpStatusCode: 403 } }, { bucket: 'b' });
    expect(mapped?.code).toBe('PERMISSION');
    expect(mapped?.message).toContain(
      'HTTP 403 without an error body (a HEAD answer cannot say why): the credentials were rejected or may not read this object',
    );
  });

  it('sync --to "" (an unset variable) says so and suggests --to env, not "sync needs --from and --to"', async () => {
    const empty = capture();
    expect(await main(['sync', '--from', 'file:///tmp/x', '--to', ''], empty.io)).toBe(2);
    expect(empty.err()).toContain('--to is empty (was it a variable such as "$MEDIA_STORAGE_URL" that is not set here?)');
    expect(empty.err()).toContain('--to env');
    expect(empty.err()).not.toContain('needs --from and --to');
    // An unquoted empty variable: "--to --dry-run".
    const swallowed = capture();
    expect(await main(['sync', '--from', 'file:///tmp/x', '--to', '--dry-run'], swallowed.io)).toBe(2);
    expect(swallowed.err()).toContain('--to needs a value');
    const absent = capture();
    expect(await main(['sync', '--from', 'file:///tmp/x'], absent.io)).toBe(2);
    expect(absent.err()).toContain('sync needs --to: where to copy to');
  });
});

describe('doctor', () => {
  let silent: net.Server;
  let port: number;
  beforeAll(async () => {
    // Accepts connections, reads what arrives, never answers.
    silent = net.createServer((socket) => socket.on('data', () => undefined).on('error', () => undefined));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    port = (silent.address() as net.AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => silent.close(resolve));
  });

  it('prints each line as it goes and gives up on an endpoint that never answers within the probe timeout', async () => {
    const run = capture();
    const started = performance.now();
    const code = await main(['doctor', '--url', `s3://key:secret@bucket?endpoint=http://127.0.0.1:${port}`, '--timeout', '1.5'], run.io);
    const elapsed = performance.now() - started;
    expect(code).toBe(1);
    const writes = run.outTimes();
    expect(writes[0]!.text).toMatch(/^ok {4}configuration backend s3/);
    // The configuration line came before the probe's wait, not at the end.
    expect(writes[0]!.at - started).toBeLessThan(1000);
    expect(run.out()).toMatch(/FAIL {2}write +No answer within 1\.5 s: the storage accepts connections but does not respond/);
    expect(elapsed).toBeLessThan(6000);
  });

  it('the built CLI exits as soon as the doctor is done, without the AWS SDK Node-version notice', async () => {
    const started = Date.now();
    const result = await run(process.execPath, [CLI, 'doctor', '--url', `s3://key:secret@bucket?endpoint=http://127.0.0.1:${port}`, '--timeout', '1'], {
      env: { PATH: process.env.PATH },
    }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    expect((result as { code?: number }).code).toBe(1);
    expect(Date.now() - started).toBeLessThan(8000);
    expect(result.stderr).not.toContain('NodeVersionSupportWarning');
    expect(result.stdout).toContain('No answer within 1 s');
  });

  it('names misspelled variables, and fails when the meant one is unset', async () => {
    const tmp = await tempDir('doctor-typo');
    const run = capture({ MEDIA_STORAGE_URI: 's3://bucket/media', MEDIA_ROOT: tmp.dir });
    expect(await main(['doctor'], run.io)).toBe(1);
    expect(run.out()).toContain(
      'FAIL  environment   MEDIA_STORAGE_URI is set, but media-storage does not read it: did you mean MEDIA_STORAGE_URL? (MEDIA_STORAGE_URL is not set, so MEDIA_STORAGE_URI is ignored)',
    );
    await tmp.remove();
  });
});

describe('environment variable typos', () => {
  it("finds the near misses of the issue and other libraries' spellings, and leaves the AWS SDK's own variables alone", () => {
    const typos = findEnvTypos({
      MEDIA_STORAGE_URI: 's3://b',
      CLOUDNARY_URL: 'cloudinary://k:s@c',
      AWS_S3_ENDPOINT: 'http://minio:9000',
      CLOUDINARY_CLOUD_NAME: 'demo',
      b2_bucket_name: 'x',
      AWS_PROFILE: 'prod',
      AWS_ENDPOINT_URL_S3: 'http://x',
      AWS_REGION: 'eu-central-1',
      MEDIA_HOST: 'cdn',
      PATH: '/bin',
      DATABASE_URL: 'postgres://',
    });
    expect(typos.map((t) => `${t.name}->${t.suggestion}`)).toEqual([
      'AWS_S3_ENDPOINT->AWS_S3_ENDPOINT_URL',
      'CLOUDINARY_CLOUD_NAME->CLOUDINARY_URL',
      'CLOUDNARY_URL->CLOUDINARY_URL',
      'MEDIA_STORAGE_URI->MEDIA_STORAGE_URL',
      'b2_bucket_name->B2_BUCKET_NAME',
    ]);
  });

  it('configFromEnv warns of them ("did you mean CLOUDINARY_URL?") instead of falling back in silence', () => {
    const warnings: string[] = [];
    const config = configFromEnv({ CLOUDNARY_URL: 'cloudinary://k:s@c' }, { warn: (m) => warnings.push(m) });
    expect(config.backend).toBe('local');
    expect(warnings).toEqual([
      'CLOUDNARY_URL is set, but media-storage does not read it: did you mean CLOUDINARY_URL? (CLOUDINARY_URL is not set, so CLOUDNARY_URL is ignored)',
    ]);
  });

  it('the CLI prints the warning when a command uses the environment', async () => {
    const tmp = await tempDir('typo-cli');
    await writeFile(path.join(tmp.dir, 'paths.txt'), 'a.jpg\n');
    const run = capture({ AWS_S3_ENDPOINT: 'http://minio:9000', MEDIA_ROOT: tmp.dir });
    expect(await main(['audit', '--keys', path.join(tmp.dir, 'paths.txt'), '--quiet'], run.io)).toBe(0);
    expect(run.err()).toContain('WARNING AWS_S3_ENDPOINT is set, but media-storage does not read it: did you mean AWS_S3_ENDPOINT_URL?');
    await tmp.remove();
  });
});

describe('audit output', () => {
  it("CSV has only the paths with a problem by default, as the guide's broken.csv says; --all adds the ok ones", async () => {
    const storage = new MemoryStorage();
    await storage.save('profile_images/ok.jpg', 'x');
    const report = await auditKeys(storage, ['profile_images/ok.jpg', 'profile_images/gone.jpg']);
    expect(formatAudit(report, 'csv')).toBe('path,status,occurrences,error,stored_as\nprofile_images/gone.jpg,missing,1,,\n');
    // A report keeps no ok paths (an audit of millions holds none); --all writes them as they are checked.
    const every = auditFormatter('csv', { all: true });
    let streamed = every.start();
    await auditKeys(storage, ['profile_images/ok.jpg', 'profile_images/gone.jpg'], { onEntry: (entry) => (streamed += every.entry(entry)) });
    expect(streamed).toBe('path,status,occurrences,error,stored_as\nprofile_images/gone.jpg,missing,1,,\nprofile_images/ok.jpg,ok,1,,\n');
  });

  it('paths stored as /media/... URLs get a hint to use --strip-prefix, checked against the storage', async () => {
    const tmp = await tempDir('audit-hint');
    const storage = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    await storage.save('profile_images/a.jpg', 'x');
    await storage.save('profile_images/b.jpg', 'x');
    await writeFile(path.join(tmp.dir, 'paths.txt'), '/media/profile_images/a.jpg\n/media/profile_images/b.jpg\n/media/profile_images/c.jpg\n');
    const run = capture();
    expect(await main(['audit', '--keys', path.join(tmp.dir, 'paths.txt'), '--url', `file://${tmp.dir}`, '--format', 'csv', '--quiet'], run.io)).toBe(0);
    expect(run.out().split('\n').filter(Boolean)).toHaveLength(4);
    expect(run.err()).toContain(
      'HINT 3 invalid paths start with "/media/": they look like URLs of the files, not keys (2 of 3 tried exist once it is removed). Run again with --strip-prefix /media/',
    );
    const again = capture();
    expect(
      await main(['audit', '--keys', path.join(tmp.dir, 'paths.txt'), '--url', `file://${tmp.dir}`, '--strip-prefix', '/media/', '--quiet'], again.io),
    ).toBe(0);
    expect(again.out()).toContain('3 paths, 3 distinct: 2 ok, 1 missing');
    expect(again.err()).toBe('');
    await tmp.remove();
  });
});

describe('sync output', () => {
  it('a log (not a TTY) never gets the last progress line twice', () => {
    const lines: string[] = [];
    const progress = new ProgressReporter({ write: (s: string) => lines.push(s) });
    progress.update({ label: 'checked', done: 50, copied: 0, bytes: 0 }, true);
    progress.finish({ label: 'checked', done: 50, copied: 0, bytes: 0 });
    expect(lines).toHaveLength(1);
    progress.finish({ label: 'checked', done: 51, copied: 1, bytes: 10 });
    expect(lines).toHaveLength(2);
  });

  it('says how many files were checked and how many copied, not "synced 50 files 0 B" for a run that copied nothing', async () => {
    const tmp = await tempDir('sync-words');
    const source = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    for (let i = 0; i < 5; i++) await source.save(`p/${i}.txt`, `file ${i}`);
    const first = capture();
    expect(await main(['sync', '--from', `file://${tmp.dir}`, '--to', `file://${tmp.dir}-copy`], first.io)).toBe(0);
    expect(first.err()).toMatch(/checked 5 files {2}copied 5 \(30 B/);
    const second = capture();
    expect(await main(['sync', '--from', `file://${tmp.dir}`, '--to', `file://${tmp.dir}-copy`], second.io)).toBe(0);
    expect(second.err()).toMatch(/checked 5 files {2}copied 0 \(0 B/);
    expect(second.err()).not.toContain('synced');
    expect(second.out()).toMatch(/^5 objects: 0 copied \(0 B\), 5 already there, 0 deleted, 0 failed/);
    await tmp.remove();
    await (await import('node:fs/promises')).rm(`${tmp.dir}-copy`, { recursive: true, force: true });
  });

  it('prints no ephemeral-disk warning for a local disk that is only the source', async () => {
    const tmp = await tempDir('sync-ephemeral');
    await new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false }).save('a.txt', 'x');
    const result = await run(process.execPath, [CLI, 'sync', '--from', `file://${tmp.dir}`, '--to', 'memory://', '--quiet'], {
      env: { PATH: process.env.PATH, RENDER: 'true', NODE_ENV: 'production' },
    });
    expect(result.stdout).toContain('1 objects: 1 copied');
    expect(result.stderr).not.toContain('MEDIA_STORAGE_EPHEMERAL_DISK');
    expect(result.stderr).not.toContain('wiped at every deploy');
    // The warning is still given for a local disk that receives the copies there.
    const toDisk = await run(process.execPath, [CLI, 'sync', '--from', 'memory://', '--to', `file://${tmp.dir}`, '--quiet'], {
      env: { PATH: process.env.PATH, RENDER: 'true', NODE_ENV: 'production' },
    });
    expect(toDisk.stderr).toContain('wiped at every deploy');
    await tmp.remove();
  });
});

/** A destination whose saves wait until aborted: a transfer that is in flight when Ctrl-C comes. */
class Hanging extends MemoryStorage {
  started = 0;
  override async save(key: string, body: Body, options?: SaveOptions) {
    this.started++;
    await new Promise<void>((_, reject) => {
      const abort = () => reject(new MediaStorageError('ABORTED', 'aborted', { key }));
      if (options?.signal?.aborted) abort();
      options?.signal?.addEventListener('abort', abort, { once: true });
    });
    return super.save(key, body, options);
  }
}

describe('sync interrupted', () => {
  it('stops pulling, aborts the copies in flight (not failures), deletes nothing and reports interrupted', async () => {
    const source = new MemoryStorage();
    for (let i = 0; i < 40; i++) await source.save(`k/${String(i).padStart(2, '0')}.txt`, `v${i}`);
    const dest = new Hanging();
    await MemoryStorage.prototype.save.call(dest, 'only-at-destination.txt', 'stay');
    const controller = new AbortController();
    const running = syncStorages(source, dest, { concurrency: 4, delete: true, signal: controller.signal });
    while (dest.started < 4) await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    const report = await running;
    expect(report).toMatchObject({ interrupted: true, failed: 0, copied: 0, deleted: 0, scanned: 4 });
    expect(report.interruptedKeys).toEqual(['k/00.txt', 'k/01.txt', 'k/02.txt', 'k/03.txt']);
    expect(dest.started).toBe(4);
    expect(await dest.exists('only-at-destination.txt')).toBe(true);
    expect(await dest.exists('k/00.txt')).toBe(false);
  });

  it('the CLI prints the summary and exits 130 on Ctrl-C', async () => {
    const tmp = await tempDir('sync-int');
    const source = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    for (let i = 0; i < 3; i++) await source.save(`p/${i}.txt`, `file ${i}`);
    const run = capture();
    const exits: number[] = [];
    // Ctrl-C as soon as the run is listening for it (a mid-transfer Ctrl-C, in a real process
    // against S3, is in test/cli/sync-interrupt.test.ts).
    const io = { ...run.io, onInterrupt: (handler: () => void) => (queueMicrotask(handler), () => undefined), exit: (code: number) => exits.push(code) };
    const pending = main(['sync', '--from', `file://${tmp.dir}`, '--to', 'memory://', '--quiet'], io);
    expect(await pending).toBe(130);
    expect(run.err()).toContain('Interrupted: aborting the copies in flight');
    expect(run.out()).toMatch(/^INTERRUPTED after \d+ objects: 0 copied \(0 B\), 0 already there, 0 deleted, 0 failed, \d+ interrupted, in/m);
    expect(run.out()).toContain('Run the same command again to copy the rest.');
    expect(exits).toEqual([]);
    await tmp.remove();
  });
});
