/**
 * `media-storage sync` against rclone (Debian's rclone package, `rclone copy`), copying the same
 * local folder of small files (1-50 KB, a profile_images/ tree) to the same S3 server in one run:
 * a first copy into an empty prefix, then a second run that finds nothing to do.
 *
 *   npm run bench sync                      # s3rver started here, 10,000 files
 *   BENCH_SYNC_FILES=2000 npm run bench sync
 *   MEDIA_STORAGE_TEST_S3_ENDPOINT=... (see docs/s3.md) npm run bench sync   # another server
 *
 * Both tools get the same concurrency (16 transfers; rclone also 16 checkers).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promisify } from 'node:util';
import { syncStorages } from '../src/cli/sync.js';
import { LocalStorage } from '../src/local/index.js';
import { startS3Target, targetLabel } from '../test/support/s3-target.js';
import { tempDir } from '../test/support/tmp.js';
import { machine, writeResults, type Measurement } from './lib/harness.js';

const run = promisify(execFile);
const FILES = Number(process.env.BENCH_SYNC_FILES ?? 10_000);
const CONCURRENCY = 16;

async function rcloneVersion(): Promise<string | undefined> {
  try {
    return (await run('rclone', ['version'])).stdout.split('\n')[0];
  } catch {
    return undefined;
  }
}

async function main(): Promise<void> {
  const rclone = await rcloneVersion();
  if (!rclone) throw new Error('rclone is not installed: apt-get install -y rclone');
  const target = await startS3Target('bench-sync');
  const tmp = await tempDir('bench-sync');
  try {
    const source = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    const pool = randomBytes(50 * 1024);
    let bytes = 0;
    for (let i = 0; i < FILES; i += 200) {
      await Promise.all(
        Array.from({ length: Math.min(200, FILES - i) }, (_, j) => {
          const n = i + j;
          const size = 1024 + ((n * 7919) % (49 * 1024));
          bytes += size;
          return source.save(`profile_images/${String(n % 100).padStart(2, '0')}/${String(n).padStart(5, '0')}.jpg`, pool.subarray(0, size));
        }),
      );
    }

    const ours = target.storage({ location: `${target.location}media-storage/` });
    // rclone's AWS SDK fails on an AWS_CA_BUNDLE meant for other tools; the test server is plain HTTP.
    const { AWS_CA_BUNDLE: _unused, ...inherited } = process.env;
    const rcloneEnv = {
      ...inherited,
      RCLONE_CONFIG_BENCH_TYPE: 's3',
      RCLONE_CONFIG_BENCH_PROVIDER: 'Other',
      RCLONE_CONFIG_BENCH_ACCESS_KEY_ID: target.credentials.accessKeyId,
      RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY: target.credentials.secretAccessKey,
      RCLONE_CONFIG_BENCH_ENDPOINT: target.endpoint,
      RCLONE_CONFIG_BENCH_REGION: target.region,
      RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE: 'true',
    };
    const rcloneDest = `bench:${target.bucket}/${target.location}rclone`;
    const rcloneCopy = () =>
      run(
        'rclone',
        [
          'copy',
          tmp.dir,
          rcloneDest,
          '--transfers',
          String(CONCURRENCY),
          '--checkers',
          String(CONCURRENCY),
          '--s3-no-check-bucket',
          '--s3-upload-cutoff',
          '200M',
        ],
        { env: rcloneEnv, maxBuffer: 64 * 1024 * 1024 },
      );

    const timed = async (fn: () => Promise<unknown>): Promise<number> => {
      const t0 = performance.now();
      await fn();
      return performance.now() - t0;
    };
    // Alternate who goes first between the two phases, so neither always meets a warmer server.
    const oursFirst = await timed(async () => {
      const report = await syncStorages(source, ours, { concurrency: CONCURRENCY });
      if (report.copied !== FILES || report.failed) throw new Error(`media-storage sync copied ${report.copied}, failed ${report.failed}`);
    });
    const rcloneFirst = await timed(rcloneCopy);
    const rcloneSecond = await timed(rcloneCopy);
    const oursSecond = await timed(async () => {
      const report = await syncStorages(source, ours, { concurrency: CONCURRENCY });
      if (report.copied !== 0) throw new Error(`second run copied ${report.copied}`);
    });
    let rcloneCount = 0;
    for await (const _ of target.storage({ location: `${target.location}rclone/` }).listAll()) rcloneCount++;
    if (rcloneCount !== FILES) throw new Error(`rclone copied ${rcloneCount} of ${FILES}`);

    const label = `${FILES.toLocaleString('en')} files`;
    const measurements: Measurement[] = [
      { case: `copy ${label} into an empty prefix`, subject: 'rclone copy', value: rcloneFirst, unit: 'ms/op' },
      { case: `copy ${label} into an empty prefix`, subject: 'media-storage sync', value: oursFirst, unit: 'ms/op' },
      { case: `second run over the finished copy`, subject: 'rclone copy', value: rcloneSecond, unit: 'ms/op' },
      { case: `second run over the finished copy`, subject: 'media-storage sync', value: oursSecond, unit: 'ms/op' },
    ];
    const mb = bytes / 1e6;
    const result = writeResults({
      name: 'sync',
      title: `Sync of ${label} (${mb.toFixed(0)} MB) from a local folder to S3: media-storage vs rclone`,
      baseline: 'rclone copy',
      subjects: ['rclone copy', 'media-storage sync'],
      measurements,
      machine: machine(),
      notes: [
        `Server: ${targetLabel}. One run each (a copy is long); ${CONCURRENCY} concurrent transfers for both; ${rclone}.`,
        `First copy throughput: media-storage ${(FILES / (oursFirst / 1000)).toFixed(0)} files/s, ${(mb / (oursFirst / 1000)).toFixed(1)} MB/s; rclone ${(FILES / (rcloneFirst / 1000)).toFixed(0)} files/s, ${(mb / (rcloneFirst / 1000)).toFixed(1)} MB/s.`,
        'Both list the destination once and skip what is there: the second run uploads nothing.',
        'Files are 1-50 KB in 100 folders; the S3 server runs on the same 2-core machine, so it competes with the client for CPU.',
      ],
    });
    console.log(`wrote ${result.md}`);
  } finally {
    await tmp.remove();
    await target.stop();
  }
}

await main();
