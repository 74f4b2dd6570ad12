/**
 * S3 against its peers on one S3 server in one run: media-storage's S3Storage, the raw S3Client
 * (the floor), flydrive 2's S3 driver and flystorage's aws-s3 adapter, for save, read and exists
 * of 1 KiB, 1 MiB and 20 MiB, taking turns call by call; medians over calls, ratios to the raw client. Every subject gets its
 * own S3Client configured alike (checksums only when required, as many S3-compatible servers need).
 *
 * Complements bench/s3.bench.ts (S3Storage vs the raw client with Content-MD5, and the 1 GiB
 * streamed save's RSS). Against an s3rver started here, or the server the MEDIA_STORAGE_TEST_S3_*
 * variables name (docs/s3.md). Run through `npm run bench` (Node 24, as flydrive 2 requires), or
 * alone: `npx -y -p node@24 node --import tsx bench/s3-peers.bench.ts`.
 */
import { randomBytes } from 'node:crypto';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import { AwsS3StorageAdapter } from '@flystorage/aws-s3';
import { FileStorage } from '@flystorage/file-storage';
import { Disk } from 'flydrive';
import { S3Driver } from 'flydrive/drivers/s3';
import { rawClient, startS3Target, targetLabel } from '../test/support/s3-target.js';
import { machine, median, sizeLabel, turnTakingTimes, writeResults, type Measurement } from './lib/harness.js';

interface Subject {
  name: string;
  save(key: string, data: Buffer): Promise<unknown>;
  read(key: string): Promise<Uint8Array>;
  exists(key: string): Promise<boolean>;
}

const SIZES = [1024, 1024 * 1024, 20 * 1024 * 1024];
/** Calls per subject per round by size; few 20 MiB ones, since a store such as RGW's memstore keeps every byte written in RAM (about 5.5 GB in all with the defaults). */
const ITERATIONS: Record<number, number> = { [1024]: 40, [1024 * 1024]: 40, [20 * 1024 * 1024]: 4 };
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 10);

async function main(): Promise<void> {
  const started = Date.now();
  const target = await startS3Target('bench-peers');
  const clients: S3Client[] = [];
  const client = (): S3Client => {
    const c = rawClient(target.endpoint, target.region, target.credentials);
    clients.push(c);
    return c;
  };
  const prefix = (name: string): string => `${target.location}${name}/`;
  const raw = client();
  const media = target.storage({ location: prefix('media-storage'), client: client() });
  const fly = new Disk(new S3Driver({ client: client(), bucket: target.bucket, visibility: 'private', supportsACL: false }));
  const flystorage = new FileStorage(new AwsS3StorageAdapter(client(), { bucket: target.bucket, prefix: prefix('flystorage') }));
  const subjects: Subject[] = [
    {
      // The floor: one request per operation, nothing checked or added.
      name: 'raw S3Client',
      save: (key, data) =>
        raw.send(new PutObjectCommand({ Bucket: target.bucket, Key: prefix('raw') + key, Body: data, ContentType: 'application/octet-stream' })),
      read: async (key) => (await raw.send(new GetObjectCommand({ Bucket: target.bucket, Key: prefix('raw') + key }))).Body!.transformToByteArray(),
      exists: (key) =>
        raw.send(new HeadObjectCommand({ Bucket: target.bucket, Key: prefix('raw') + key })).then(
          () => true,
          (err: { name?: string }) => {
            if (err.name === 'NotFound') return false;
            throw err;
          },
        ),
    },
    { name: 'media-storage', save: (key, data) => media.save(key, data), read: (key) => media.readBuffer(key), exists: (key) => media.exists(key) },
    {
      name: 'flydrive 2 (s3)',
      save: (key, data) => fly.put(prefix('flydrive') + key, data),
      read: (key) => fly.getBytes(prefix('flydrive') + key),
      exists: (key) => fly.exists(prefix('flydrive') + key),
    },
    {
      name: 'flystorage (aws-s3)',
      save: (key, data) => flystorage.write(key, data),
      read: (key) => flystorage.readToBuffer(key),
      exists: (key) => flystorage.fileExists(key),
    },
  ];

  const measurements: Measurement[] = [];
  try {
    for (const size of SIZES) {
      const data = randomBytes(size);
      const iterations = ITERATIONS[size]!;
      // Correctness first: a fast wrong answer is not a result.
      for (const s of subjects) {
        await s.save(`check/${size}.bin`, data);
        const back = Buffer.from(await s.read(`check/${size}.bin`));
        if (!back.equals(data) || !(await s.exists(`check/${size}.bin`)) || (await s.exists(`check/absent-${size}.bin`)))
          throw new Error(`${s.name} did not round-trip ${size} bytes`);
      }
      const cases: Array<[string, (s: Subject, i: number) => Promise<unknown>]> = [
        // Replacing one of 4 keys: the avatar-update pattern.
        [`save ${sizeLabel(size)}`, (s, i) => s.save(`save/${size}-${i % 4}.bin`, data)],
        [`read ${sizeLabel(size)}`, (s) => s.read(`check/${size}.bin`)],
        [`exists ${sizeLabel(size)}`, (s) => s.exists(`check/${size}.bin`)],
      ];
      for (const [label, op] of cases) {
        const results = await turnTakingTimes(subjects, op, { rounds: ROUNDS, iterations });
        subjects.forEach((s, k) => {
          measurements.push({ case: label, subject: s.name, value: median(results[k]!.callsMs), unit: 'ms/op', rounds: results[k]!.roundMeansMs });
        });
        process.stderr.write(`  ${label} done\n`);
      }
    }
  } finally {
    for (const c of clients) c.destroy();
    await target.stop();
  }

  const paths = writeResults({
    name: 's3-peers',
    title: `S3 (${targetLabel}): media-storage vs the raw S3Client, flydrive and flystorage`,
    baseline: 'raw S3Client',
    subjects: subjects.map((s) => s.name),
    measurements,
    machine: machine(),
    notes: [
      `Against ${targetLabel === 's3rver' ? 'an s3rver started by the bench (a Node process on this machine: its own speed dominates the figures)' : targetLabel}. ${ROUNDS} rounds after a warm-up round, each of ${ITERATIONS[1024]} (1 KiB), ${ITERATIONS[1024 * 1024]} (1 MiB) or ${ITERATIONS[20 * 1024 * 1024]} (20 MiB) calls per subject; the subjects take turns call by call, the first of each turn rotating, and every call is timed. Figures are medians over all calls of a subject (a median over calls is not moved by the occasional stalled request, which can move the mean of a block of calls by tens of percent).`,
      'Each subject has its own S3Client with the same settings (`requestChecksumCalculation`/`responseChecksumValidation: WHEN_REQUIRED`). `save` replaces one of 4 keys with a Buffer; `read` reads a whole object into memory; `exists` asks for an object that exists (HeadObject for all four).',
      'media-storage checks the key, sniffs the content type and sends one PutObject up to its multipart threshold (32 MiB); flystorage writes through lib-storage’s Upload; flydrive sends one PutObject.',
      `Took ${Math.round((Date.now() - started) / 1000)} s.`,
    ],
  });
  process.stderr.write(`wrote ${paths.md}\n`);
}

await main();
