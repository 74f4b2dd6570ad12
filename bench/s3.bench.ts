/**
 * S3 benchmark: put, head and get of 1 KB, 1 MB and 20 MB objects through S3Storage and through
 * the raw S3Client it wraps, on the same server in one run, interleaved round by round; medians of
 * the per-operation times and their ratio. Then a 1 GiB streamed save in a child process, whose
 * peak RSS is measured.
 *
 *   npm run bench:s3                         # against an s3rver started here
 *   MEDIA_STORAGE_TEST_S3_ENDPOINT=... npm run bench:s3   # any S3 server (variables in docs/s3.md)
 *   BENCH_ROUNDS=9 BENCH_OUT=bench/results/s3.md npm run bench:s3
 *
 * Results are printed as Markdown and appended to BENCH_OUT when set.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { startS3Target, targetLabel } from '../test/helpers/s3-target.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const STREAM_BYTES = Number(process.env.BENCH_STREAM_BYTES ?? 1024 ** 3);
/** `ops`, `stream` or both (default): a store that keeps deleted bytes for a while (Ceph RGW's memstore) may need a restart between them. */
const PHASES = (process.env.BENCH_PHASES ?? 'ops,stream').split(',');
const SIZES: Array<{ label: string; bytes: number; perRound: number }> = [
  { label: '1 KB', bytes: 1024, perRound: 40 },
  { label: '1 MB', bytes: 1024 * 1024, perRound: 10 },
  { label: '20 MB', bytes: 20 * 1024 * 1024, perRound: 3 },
];

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** Mean time per call of `fn` over `n` sequential calls, in ms. */
async function timeEach(n: number, fn: (i: number) => Promise<unknown>): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  return Number(process.hrtime.bigint() - start) / 1e6 / n;
}

interface StreamResult {
  mode: string;
  source: string;
  bytes: number;
  seconds: number;
  maxRssMb: number;
  startRssMb: number;
  sampledPeakRssMb: number;
  partSize: number;
  queueSize: number;
}

const fmt = (ms: number): string => (ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2));

async function main(): Promise<void> {
  const target = await startS3Target('bench');
  const storage = target.storage();
  const client = storage.client;
  const lines: string[] = [];
  const out = (line = ''): void => {
    lines.push(line);
    console.log(line);
  };
  out(`## ${new Date().toISOString()} — ${targetLabel}`);
  out();
  out(`Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os.loadavg().map((l) => l.toFixed(2)).join(' ')} at start. ${ROUNDS} rounds; in each round S3Storage and the raw S3Client (the same client instance) alternate, each doing the operation n times in a row; figures are medians over rounds of the mean ms per operation.`);
  out();
  if (PHASES.includes('ops')) {
    out('| size | op | n/round | raw S3Client ms | S3Storage ms | ratio | raw + Content-MD5 ms | ratio vs that |');
    out('|---|---|---|---|---|---|---|---|');

    for (const size of SIZES) {
      const data = randomBytes(size.bytes);
      const rawKey = (i: number): string => `${target.location}bench/raw-${size.label.replace(' ', '')}-${i}.bin`;
      const libKey = (i: number): string => `bench/lib-${size.label.replace(' ', '')}-${i}.bin`;
      const times = { put: { raw: [] as number[], lib: [] as number[], rawMd5: [] as number[] }, head: { raw: [] as number[], lib: [] as number[] }, get: { raw: [] as number[], lib: [] as number[] } };
      // Warm up connections and JIT for both paths.
      await client.send(new PutObjectCommand({ Bucket: target.bucket, Key: rawKey(0), Body: data, ContentType: 'application/octet-stream' }));
      await storage.save(libKey(0), data);
      for (let round = 0; round < ROUNDS; round++) {
        // Alternate which side goes first, so drift in the shared machine's load hits both.
        const rawFirst = round % 2 === 0;
        const put = {
          raw: () => timeEach(size.perRound, (i) => client.send(new PutObjectCommand({ Bucket: target.bucket, Key: rawKey(i), Body: data, ContentType: 'application/octet-stream' }))),
          lib: () => timeEach(size.perRound, (i) => storage.save(libKey(i), data)),
        };
        const head = {
          raw: () => timeEach(size.perRound, (i) => client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: rawKey(i) }))),
          lib: () => timeEach(size.perRound, (i) => storage.stat(libKey(i))),
        };
        const get = {
          raw: () =>
            timeEach(size.perRound, async (i) => {
              const res = await client.send(new GetObjectCommand({ Bucket: target.bucket, Key: rawKey(i) }));
              const chunks: Buffer[] = [];
              for await (const chunk of res.Body as AsyncIterable<Buffer>) chunks.push(chunk);
              if (Buffer.concat(chunks).length !== data.length) throw new Error('short read');
            }),
          lib: () =>
            timeEach(size.perRound, async (i) => {
              if ((await storage.readBuffer(libKey(i))).length !== data.length) throw new Error('short read');
            }),
        };
        for (const [name, op] of [['put', put], ['head', head], ['get', get]] as const) {
          if (rawFirst) {
            times[name].raw.push(await op.raw());
            times[name].lib.push(await op.lib());
          } else {
            times[name].lib.push(await op.lib());
            times[name].raw.push(await op.raw());
          }
        }
        times.put.rawMd5.push(
          await timeEach(size.perRound, (i) =>
            client.send(new PutObjectCommand({ Bucket: target.bucket, Key: rawKey(i), Body: data, ContentType: 'application/octet-stream', ContentMD5: createHash('md5').update(data).digest('base64') })),
          ),
        );
      }
      for (const name of ['put', 'head', 'get'] as const) {
        const raw = median(times[name].raw);
        const lib = median(times[name].lib);
        const rawMd5 = name === 'put' ? median(times.put.rawMd5) : undefined;
        out(`| ${size.label} | ${name} | ${size.perRound} | ${fmt(raw)} | ${fmt(lib)} | ${(lib / raw).toFixed(3)} | ${rawMd5 === undefined ? '' : fmt(rawMd5)} | ${rawMd5 === undefined ? '' : (lib / rawMd5).toFixed(3)} |`);
      }
      await Promise.all(
        Array.from({ length: size.perRound }, (_, i) => [
          client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: rawKey(i) })),
          storage.delete(libKey(i)),
        ]).flat(),
      );
  }

  }

  // The streamed saves run in their own processes (plain node on dist/), so each peak RSS is
  // that upload's alone: S3Storage, then lib-storage's Upload by itself as the peer.
  const runChild = (mode: 'storage' | 'raw', source: 'copy' | 'view') =>
    new Promise<StreamResult>((resolve, reject) => {
      const proc = spawn(process.execPath, [path.join(HERE, 's3-stream-child.mjs'), mode], {
        env: {
          ...process.env,
          BENCH_ENDPOINT: target.endpoint,
          BENCH_BUCKET: target.bucket,
          BENCH_REGION: target.region,
          BENCH_ACCESS_KEY: target.credentials.accessKeyId,
          BENCH_SECRET_KEY: target.credentials.secretAccessKey,
          BENCH_LOCATION: target.location,
          BENCH_STREAM_BYTES: String(STREAM_BYTES),
          BENCH_SOURCE: source,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let text = '';
      proc.stdout.on('data', (d: Buffer) => (text += d.toString()));
      proc.on('exit', (code) => (code === 0 ? resolve(JSON.parse(text.trim().split('\n').pop()!) as StreamResult) : reject(new Error(`stream child exited with ${code}`))));
    });
  if (PHASES.includes('stream')) {
    const streamed = [await runChild('storage', 'copy'), await runChild('raw', 'copy'), await runChild('storage', 'view')];
    out();
    out(`Streamed save of ${(STREAM_BYTES / 1024 ** 3).toFixed(2)} GiB from a generated stream of unknown length, ${streamed[0]!.partSize / 1024 ** 2} MiB parts, ${streamed[0]!.queueSize} at a time, each in its own child process (plain node, built dist/):`);
    out();
    out('| uploader | source chunks | seconds | MiB/s | peak RSS MB (maxRSS) | RSS before upload MB | highest VmRSS sample MB |');
    out('|---|---|---|---|---|---|---|');
    for (const r of streamed) {
      out(`| ${r.mode === 'raw' ? 'lib-storage Upload alone' : 'S3Storage.save'} | ${r.source === 'copy' ? 'new 64 KiB buffer each' : 'views of one buffer'} | ${r.seconds.toFixed(1)} | ${(r.bytes / 1024 ** 2 / r.seconds).toFixed(0)} | ${r.maxRssMb.toFixed(0)} | ${r.startRssMb.toFixed(0)} | ${r.sampledPeakRssMb.toFixed(0)} |`);
  }
  out();
  }
  if (process.env.BENCH_OUT) await appendFile(process.env.BENCH_OUT, `${lines.join('\n')}\n\n`);
  await target.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
