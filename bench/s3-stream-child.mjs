/**
 * Child of s3.bench.ts, run with plain node on the built dist (so the RSS is the upload's, not a
 * TypeScript loader's): saves BENCH_STREAM_BYTES from a generated stream of unknown length, then
 * prints one JSON line with the time and peak RSS.
 *   mode "storage": S3Storage.save with its default part size and queue.
 *   mode "raw":     @aws-sdk/lib-storage's Upload on the same S3Client settings (the peer).
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { DeleteObjectCommand } from '@aws-sdk/client-s3';
import { S3Storage } from '../dist/s3/index.js';

const env = process.env;
const mode = process.argv[2] ?? 'storage';
const total = Number(env.BENCH_STREAM_BYTES);

function rssMb() {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return match ? Number(match[1]) / 1024 : process.memoryUsage().rss / 1024 ** 2;
}

const storage = new S3Storage({
  bucket: env.BENCH_BUCKET,
  endpoint: env.BENCH_ENDPOINT,
  region: env.BENCH_REGION,
  credentials: { accessKeyId: env.BENCH_ACCESS_KEY, secretAccessKey: env.BENCH_SECRET_KEY },
  location: env.BENCH_LOCATION,
  ...(env.BENCH_PART_SIZE ? { partSize: Number(env.BENCH_PART_SIZE) } : {}),
  ...(env.BENCH_QUEUE_SIZE ? { queueSize: Number(env.BENCH_QUEUE_SIZE) } : {}),
});

// 64 KiB chunks cut from a 1 MiB pattern: varied bytes, and a length the reader cannot know.
// BENCH_SOURCE=copy (default) allocates every chunk, as a network or file stream does; "view"
// hands out views of the pattern, so only the uploader's own memory shows.
const copy = (env.BENCH_SOURCE ?? 'copy') === 'copy';
const pattern = Buffer.alloc(1024 * 1024);
for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 2654435761) >>> 24;
let sent = 0;
const body = new Readable({
  read() {
    if (sent >= total) return this.push(null);
    const n = Math.min(64 * 1024, total - sent);
    const offset = sent % pattern.length;
    sent += n;
    const chunk = pattern.subarray(offset, offset + n);
    this.push(copy ? Buffer.from(chunk) : chunk);
  },
});

const key = `bench/stream-${mode}.bin`;
const startRssMb = rssMb();
let sampledPeakRssMb = startRssMb;
const sampler = setInterval(() => {
  sampledPeakRssMb = Math.max(sampledPeakRssMb, rssMb());
}, 50);
const started = process.hrtime.bigint();
if (mode === 'raw') {
  // Loaded only for its own run, so the S3Storage runs' RSS carries none of it.
  const { Upload } = await import('@aws-sdk/lib-storage');
  await new Upload({
    client: storage.client,
    params: { Bucket: env.BENCH_BUCKET, Key: `${env.BENCH_LOCATION}${key}`, Body: body, ContentType: 'application/octet-stream' },
    partSize: storage.partSize,
    queueSize: storage.queueSize,
  }).done();
} else {
  const info = await storage.save(key, body, { contentType: 'application/octet-stream' });
  if (info.size !== total) throw new Error(`stored ${info.size} bytes of ${total}`);
}
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
clearInterval(sampler);
const maxRssMb = process.resourceUsage().maxRSS / 1024;
await storage.client.send(new DeleteObjectCommand({ Bucket: env.BENCH_BUCKET, Key: `${env.BENCH_LOCATION}${key}` }));
console.log(
  JSON.stringify({
    mode,
    source: copy ? 'copy' : 'view',
    bytes: total,
    seconds,
    maxRssMb,
    startRssMb,
    sampledPeakRssMb,
    partSize: storage.partSize,
    queueSize: storage.queueSize,
  }),
);
