/**
 * Peak RSS of a 1 GiB streamed save (length unknown up front) on each backend: local disk,
 * Cloudinary (chunked upload), B2 (spooled to a temp file, then the large-file API), against their
 * fakes, and S3 (multipart) against an s3rver started here or the server the
 * MEDIA_STORAGE_TEST_S3_* variables name (its own process: its memory is not counted), and Azure
 * (blocks) against Azurite in its own process. The fakes run in this process; each save runs in a fresh child process,
 * so the child's RSS is the library's alone, not the 1 GiB the fake keeps.
 *
 * Run through `npm run bench` (or `npm run bench backend-rss`); `BENCH_RSS_BYTES` changes the size,
 * `BENCH_RSS_BACKENDS=local,azure` runs some backends only (results then go to backend-rss-local-azure.md).
 */
import { spawn } from 'node:child_process';
import { DeleteObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { AzureBlobStorage } from '../src/azure/index.js';
import { B2Storage } from '../src/b2/index.js';
import { CloudinaryStorage } from '../src/cloudinary/index.js';
import type { MediaStorage } from '../src/core/types.js';
import { LocalStorage } from '../src/local/index.js';
import { S3Storage } from '../src/s3/index.js';
import { startFakeB2 } from '../test/support/fakes/b2-server.js';
import { FakeCloudinary } from '../test/support/fakes/cloudinary-server.js';
import { startS3Target } from '../test/support/s3-target.js';
import { startAzurite } from '../test/support/azurite.js';
import { generatedStream, machine, rssDuring, sizeLabel, writeResults, type Measurement } from './lib/harness.js';

const RSS_BYTES = Number(process.env.BENCH_RSS_BYTES ?? 2 ** 30);
const ALL_BACKENDS = ['local', 'cloudinary', 'b2', 's3', 'azure'] as const;
type Backend = (typeof ALL_BACKENDS)[number];
/**
 * What is measured: each backend with its defaults, and variants with one option changed
 * (`s3 queueSize=1`): the memory each default costs beside what a smaller setting would save.
 * `BENCH_RSS_SUBJECTS=local,s3,s3 queueSize=1` measures only those (local first: the baseline);
 * `BENCH_RSS_BACKENDS=local,azure` the defaults of some backends (results then go to backend-rss-local-azure.md).
 */
const DEFAULT_SUBJECTS = ['local', 'cloudinary', 'cloudinary chunkSize=5242880', 'b2', 's3', 's3 queueSize=1', 'azure'];
const chosen = process.env.BENCH_RSS_BACKENDS?.split(',').map((b) => b.trim());
const SUBJECTS: readonly string[] = process.env.BENCH_RSS_SUBJECTS
  ? process.env.BENCH_RSS_SUBJECTS.split(',')
  : chosen
    ? ALL_BACKENDS.filter((b) => chosen.includes(b))
    : DEFAULT_SUBJECTS;
/** Rounds per subject, each in a fresh child; the median is reported (GC timing makes single figures noisy). */
const ROUNDS = Number(process.env.BENCH_RSS_ROUNDS ?? 3);

function parseSubject(subject: string): { backend: Backend; options: Record<string, number> } {
  const [backend, ...settings] = subject.split(' ');
  if (!(ALL_BACKENDS as readonly string[]).includes(backend!)) throw new Error(`unknown backend ${backend}`);
  return { backend: backend as Backend, options: Object.fromEntries(settings.map((kv) => [kv.split('=')[0]!, Number(kv.split('=')[1])])) };
}
const KEY = 'bench/big.bin';
const CLOUD = { cloudName: 'bench-cloud', apiKey: '999999999999999', apiSecret: 'bench-secret-abcdefghijkl' };
const B2_BUCKET = 'bench-bucket';

/** Where the child finds its backend: a folder, or a fake's address and keys. */
type Target = { options?: Record<string, number> } & (
  | { backend: 'local'; root: string }
  | { backend: 'cloudinary'; url: string }
  | { backend: 'b2'; authorizeUrl: string; applicationKeyId: string; applicationKey: string }
  | { backend: 's3'; endpoint: string; region: string; bucket: string; location: string; credentials: { accessKeyId: string; secretAccessKey: string } }
  | { backend: 'azure'; connectionString: string; container: string }
);

interface ChildResult {
  startMiB: number;
  peakMiB: number;
  ms: number;
  /** Highest Buffer memory (outside the JS heap) and JS heap in use, sampled with RSS: where the growth is. */
  peakBuffersMiB: number;
  peakHeapMiB: number;
}

function storageFor(target: Target): MediaStorage & { close?: () => void } {
  // Default chunk, part and spool sizes (what a user gets), unless the subject changes one.
  const o = target.options ?? {};
  if (target.backend === 'local') return new LocalStorage({ root: target.root, warnOnEphemeralDisk: false, ...o });
  if (target.backend === 'cloudinary') return new CloudinaryStorage({ ...CLOUD, uploadPrefix: target.url, ...o });
  if (target.backend === 'azure') return new AzureBlobStorage({ connectionString: target.connectionString, container: target.container, ...o });
  if (target.backend === 's3')
    return new S3Storage({
      bucket: target.bucket,
      endpoint: target.endpoint,
      region: target.region,
      credentials: target.credentials,
      location: target.location,
      ...o,
    });
  return new B2Storage({
    applicationKeyId: target.applicationKeyId,
    applicationKey: target.applicationKey,
    bucketName: B2_BUCKET,
    apiUrl: target.authorizeUrl,
    ...o,
  });
}

/** Child process: one streamed save; prints its RSS before and at peak, and its time. */
async function child(target: Target): Promise<void> {
  const storage = storageFor(target);
  const started = performance.now();
  let size = 0;
  let peakBuffersMiB = 0;
  let peakHeapMiB = 0;
  // BENCH_RSS_LIVE=1: garbage collected before each sample, so the Buffer figure is what the
  // save really holds (the RSS figures are then not comparable with a normal run).
  const gc = (globalThis as { gc?: () => void }).gc;
  const breakdown = setInterval(() => {
    gc?.();
    const m = process.memoryUsage();
    peakBuffersMiB = Math.max(peakBuffersMiB, m.arrayBuffers / 2 ** 20);
    peakHeapMiB = Math.max(peakHeapMiB, m.heapUsed / 2 ** 20);
  }, 5);
  const { startMiB, peakMiB } = await rssDuring(async () => {
    size = (await storage.save(KEY, generatedStream(RSS_BYTES))).size;
  }).finally(() => clearInterval(breakdown));
  const ms = performance.now() - started;
  storage.close?.();
  if (size !== RSS_BYTES) throw new Error(`${target.backend} stored ${size} bytes, not ${RSS_BYTES}`);
  process.stdout.write(`${JSON.stringify({ startMiB, peakMiB, ms, peakBuffersMiB, peakHeapMiB } satisfies ChildResult)}\n`);
}

function runChildWith(target: Target): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url);
  const proc = spawn(process.execPath, [...process.execArgv, ...(process.env.BENCH_RSS_LIVE ? ['--expose-gc'] : []), self, '--child'], {
    env: { ...process.env, BENCH_TARGET: JSON.stringify(target) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as ChildResult) : reject(new Error(`${target.backend} child exited with ${code}`)),
    );
  });
}

/** Starts the backend (a folder or a fake in this process), runs the child, checks what was stored, cleans up. */
async function measure(subject: string): Promise<ChildResult> {
  const { backend, options } = parseSubject(subject);
  const runChild = (target: Target): Promise<ChildResult> => runChildWith({ ...target, options });
  if (backend === 'local') {
    const root = await mkdtemp(path.join(os.tmpdir(), 'bench-rss-local-'));
    try {
      const result = await runChild({ backend, root });
      if ((await stat(path.join(root, KEY))).size !== RSS_BYTES) throw new Error('local stored the wrong size');
      return result;
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }
  if (backend === 'cloudinary') {
    const fake = await new FakeCloudinary([CLOUD]).start();
    fake.maxFileSize = Number.MAX_SAFE_INTEGER;
    try {
      const result = await runChild({ backend, url: fake.url });
      if (fake.asset(CLOUD.cloudName, 'raw', 'upload', KEY)?.bytes.length !== RSS_BYTES) throw new Error('the fake Cloudinary holds the wrong size');
      return result;
    } finally {
      fake.assets.clear();
      await fake.stop();
    }
  }
  if (backend === 's3') {
    const s3 = await startS3Target('bench-rss');
    const fullKey = s3.location + KEY;
    try {
      const result = await runChild({
        backend,
        endpoint: s3.endpoint,
        region: s3.region,
        bucket: s3.bucket,
        location: s3.location,
        credentials: s3.credentials,
      });
      const head = await s3.client.send(new HeadObjectCommand({ Bucket: s3.bucket, Key: fullKey }));
      if (head.ContentLength !== RSS_BYTES) throw new Error('the S3 server holds the wrong size');
      return result;
    } finally {
      await s3.client.send(new DeleteObjectCommand({ Bucket: s3.bucket, Key: fullKey })).catch(() => undefined);
      await s3.stop();
    }
  }
  if (backend === 'azure') {
    const azurite = await startAzurite();
    try {
      const container = await azurite.container('bench-rss');
      const result = await runChild({ backend, connectionString: azurite.connectionString, container });
      const props = await azurite.service.getContainerClient(container).getBlockBlobClient(KEY).getProperties();
      if (props.contentLength !== RSS_BYTES) throw new Error('Azurite holds the wrong size');
      return result;
    } finally {
      await azurite.stop();
    }
  }
  const fake = await startFakeB2({ buckets: { [B2_BUCKET]: 'allPrivate' } });
  try {
    const result = await runChild({ backend, authorizeUrl: fake.authorizeUrl, applicationKeyId: fake.applicationKeyId, applicationKey: fake.applicationKey });
    if (fake.versionsOf(B2_BUCKET, KEY).at(-1)?.data.length !== RSS_BYTES) throw new Error('the fake B2 holds the wrong size');
    if (fake.unfinishedLargeFiles().length) throw new Error('an unfinished large file was left at the fake B2');
    return result;
  } finally {
    fake.versions.length = 0;
    await fake.close();
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const measurements: Measurement[] = [];
  const size = sizeLabel(RSS_BYTES);
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  for (const subject of SUBJECTS) {
    const rounds: ChildResult[] = [];
    for (let r = 0; r < ROUNDS; r++) rounds.push(await measure(subject));
    const growth = rounds.map((x) => x.peakMiB - x.startMiB);
    const pick = <K extends keyof ChildResult>(k: K): number => median(rounds.map((x) => x[k]));
    measurements.push({ case: `peak RSS during a ${size} streamed save`, subject, value: pick('peakMiB'), unit: 'MiB' });
    measurements.push({ case: `RSS growth during a ${size} streamed save`, subject, value: median(growth), unit: 'MiB' });
    measurements.push({ case: `peak Buffer memory during a ${size} streamed save`, subject, value: pick('peakBuffersMiB'), unit: 'MiB' });
    measurements.push({ case: `time of a ${size} streamed save`, subject, value: pick('ms'), unit: 'ms/op' });
    process.stderr.write(
      `  ${subject}: RSS growth ${growth.map((g) => g.toFixed(0)).join(', ')} MiB; Buffers at most ${rounds.map((x) => x.peakBuffersMiB.toFixed(0)).join(', ')} MiB; heap ${rounds.map((x) => x.peakHeapMiB.toFixed(0)).join(', ')} MiB; ${rounds.map((x) => (x.ms / 1000).toFixed(1)).join(', ')} s\n`,
    );
  }
  const paths = writeResults({
    name:
      chosen || process.env.BENCH_RSS_SUBJECTS || process.env.BENCH_RSS_LIVE
        ? `backend-rss-${SUBJECTS.map((x) => x.replace(/[ =]/g, '-')).join('-')}${process.env.BENCH_RSS_LIVE ? '-live' : ''}`
        : 'backend-rss',
    title: `Memory of a ${size} streamed save, per backend`,
    baseline: 'local',
    subjects: [...SUBJECTS],
    measurements,
    machine: machine(),
    notes: [
      `One ${size} save per subject and round (${ROUNDS} rounds, the median shown), of fresh 1 MiB chunks from a stream of unknown length, each in a fresh child process; RSS is sampled every 5 ms during the save. "Peak" includes Node and the loaded code; "growth" is peak minus RSS just before the save; "Buffer memory" is process.memoryUsage().arrayBuffers at its highest: the body's bytes, live or not yet collected (V8 collects Buffers only after tens of MiB of them accumulate, which is most of local's growth).`,
      'Subjects with a setting (`s3 queueSize=1`, `cloudinary chunkSize=5242880`) are the same backend with that one option changed: what a smaller buffer would save, and what it costs in time.',
      'Default settings: Cloudinary sends 20 MiB chunks (chunked upload protocol); B2 spools the body to a temp file while hashing it (SHA-1 per 100 MB part), then sends the parts through the large-file API; S3 sends 5 MiB parts, 4 at a time (multipart upload); Azure stages 8 MiB blocks, 4 at a time, and commits them with one Put Block List.',
      "Azure is Azurite (in memory, in its own process: its memory is not counted); its times are the emulator's, not the service's.",
      `Cloudinary and B2 are their fakes (test/support/fakes/), running in the parent process over loopback, so the ${size} they keep is not in the figures; times include the fakes' own work and are not what the real services take. S3 is ${process.env.MEDIA_STORAGE_TEST_S3_ENDPOINT ? 'the server MEDIA_STORAGE_TEST_S3_ENDPOINT names' : 'an s3rver in its own process, writing to a temp folder'}.`,
      `${process.env.BENCH_RSS_LIVE ? 'BENCH_RSS_LIVE: garbage collected before every sample, so the Buffer figure is the live memory of the save. ' : ''}Took ${Math.round((Date.now() - started) / 1000)} s.`,
    ],
  });
  process.stderr.write(`wrote ${paths.md}\n`);
}

if (process.argv.includes('--child')) await child(JSON.parse(process.env.BENCH_TARGET!) as Target);
else await main();
