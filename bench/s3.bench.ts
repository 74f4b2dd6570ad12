/**
 * S3 benchmark: put, head and get of 1 KB, 1 MB and 20 MB objects through S3Storage and through
 * the raw S3Client it wraps, on the same server in one run, alternating call by call; medians of
 * the per-call times, their ratio and its bootstrap interval. Then a 1 GiB streamed save in a
 * child process, whose peak RSS is measured.
 *
 *   npm run bench:s3                         # against an s3rver started here
 *   MEDIA_STORAGE_TEST_S3_ENDPOINT=... npm run bench:s3   # any S3 server (variables in docs/s3.md)
 *   BENCH_ROUNDS=9 BENCH_OUT=bench/results/s3.md npm run bench:s3
 *
 * The ops phase writes about 10 GB with the default 15 rounds (deleted as it goes); a store that
 * keeps deleted bytes for a while needs that much room (Ceph RGW's memstore: S3_MEM_BYTES).
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
import { startS3Target, targetLabel } from '../test/support/s3-target.js';
import { median, medianRatioInterval, turnTakingTimes } from './lib/harness.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const STREAM_BYTES = Number(process.env.BENCH_STREAM_BYTES ?? 1024 ** 3);
/** `ops`, `stream` or both (default): a store that keeps deleted bytes for a while (Ceph RGW's memstore) may need a restart between them. */
const PHASES = (process.env.BENCH_PHASES ?? 'ops,stream').split(',');
type Op = 'put' | 'head' | 'get';
/**
 * Calls per side per round of each operation. Single calls on loopback vary by ±50 % (p10 to p90),
 * so a median needs hundreds of calls to settle within a percent or two; the counts are set so
 * each operation gets about the same time. `put` also sets how many objects head and get cycle over.
 */
const SIZES: Array<{ label: string; bytes: number; calls: Record<Op, number> }> = [
  { label: '1 KB', bytes: 1024, calls: { put: 100, head: 100, get: 40 } },
  { label: '1 MB', bytes: 1024 * 1024, calls: { put: 40, head: 100, get: 80 } },
  { label: '20 MB', bytes: 20 * 1024 * 1024, calls: { put: 8, head: 60, get: 16 } },
];

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
  out(
    `Node ${process.version}, ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at start.`,
  );
  out();
  if (PHASES.includes('ops')) {
    out(
      `${ROUNDS} rounds after one warm-up round; in each round S3Storage and the raw S3Client (the same client instance) take turns call by call, the first of each turn rotating (puts also rotate with a raw put carrying a Content-MD5); figures are the median ms per call over every timed call (rounds × calls per side), and the ratio is S3Storage's median over the raw client's.`,
    );
    out();
    out('| size | op | calls per side | raw S3Client ms | S3Storage ms | ratio | 95 % interval | raw + Content-MD5 ms | S3Storage / raw + Content-MD5 |');
    out('|---|---|---|---|---|---|---|---|---|');

    const ratios: Array<{ cell: string; ratio: number; high: number }> = [];
    for (const size of SIZES) {
      const data = randomBytes(size.bytes);
      const rawKey = (i: number): string => `${target.location}bench/raw-${size.label.replace(' ', '')}-${i}.bin`;
      const libKey = (i: number): string => `bench/lib-${size.label.replace(' ', '')}-${i}.bin`;
      // Its own keys, so that every side's put replaces an object written a whole turn earlier.
      const md5Key = (i: number): string => `${target.location}bench/md5-${size.label.replace(' ', '')}-${i}.bin`;
      type Side = 'raw' | 'lib' | 'rawMd5';
      const times: Record<Op, Partial<Record<Side, number[]>>> = { put: {}, head: {}, get: {} };
      const objects = size.calls.put;
      const ops: Record<Op, Partial<Record<Side, (i: number) => Promise<unknown>>>> = {
        put: {
          raw: (i) => client.send(new PutObjectCommand({ Bucket: target.bucket, Key: rawKey(i), Body: data, ContentType: 'application/octet-stream' })),
          lib: (i) => storage.save(libKey(i), data),
          // What S3Storage's contentMd5 option adds: the raw put with a Content-MD5 (hashed per call).
          rawMd5: (i) =>
            client.send(
              new PutObjectCommand({
                Bucket: target.bucket,
                Key: md5Key(i),
                Body: data,
                ContentType: 'application/octet-stream',
                ContentMD5: createHash('md5').update(data).digest('base64'),
              }),
            ),
        },
        head: {
          raw: (i) => client.send(new HeadObjectCommand({ Bucket: target.bucket, Key: rawKey(i) })),
          lib: (i) => storage.stat(libKey(i)),
        },
        get: {
          raw: async (i) => {
            const res = await client.send(new GetObjectCommand({ Bucket: target.bucket, Key: rawKey(i) }));
            const chunks: Buffer[] = [];
            for await (const chunk of res.Body as AsyncIterable<Buffer>) chunks.push(chunk);
            if (Buffer.concat(chunks).length !== data.length) throw new Error('short read');
          },
          lib: async (i) => {
            if ((await storage.readBuffer(libKey(i))).length !== data.length) throw new Error('short read');
          },
        },
      };
      // The sides take turns call by call (see turnTakingTimes); the put's sides include the raw
      // put with a Content-MD5. The puts go first, so head and get find every object.
      for (const name of ['put', 'head', 'get'] as const) {
        const sides = Object.keys(ops[name]) as Side[];
        const results = await turnTakingTimes(sides, (side, i) => ops[name][side]!(i % objects), { rounds: ROUNDS, iterations: size.calls[name] });
        sides.forEach((side, k) => (times[name][side] = results[k]!.callsMs));
      }
      for (const name of ['put', 'head', 'get'] as const) {
        const raw = median(times[name].raw!);
        const lib = median(times[name].lib!);
        const rawMd5 = times[name].rawMd5 ? median(times[name].rawMd5) : undefined;
        const [low, high] = medianRatioInterval(times[name].raw!, times[name].lib!);
        ratios.push({ cell: `${size.label} ${name}`, ratio: lib / raw, high });
        out(
          `| ${size.label} | ${name} | ${times[name].raw!.length} | ${fmt(raw)} | ${fmt(lib)} | ${(lib / raw).toFixed(3)} | ${low.toFixed(3)}–${high.toFixed(3)} | ${rawMd5 === undefined ? '' : fmt(rawMd5)} | ${rawMd5 === undefined ? '' : (lib / rawMd5).toFixed(3)} |`,
        );
      }
      await Promise.all(
        Array.from({ length: objects }, (_, i) => [
          client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: rawKey(i) })),
          client.send(new DeleteObjectCommand({ Bucket: target.bucket, Key: md5Key(i) })),
          storage.delete(libKey(i)),
        ]).flat(),
      );
    }
    const worst = ratios.reduce((a, b) => (b.ratio > a.ratio ? b : a));
    out();
    out(
      `Largest ratio: ${worst.ratio.toFixed(3)} (${worst.cell}); ${ratios.filter((r) => r.ratio > 1.05).length} of ${ratios.length} cells over 1.05; ${ratios.filter((r) => r.high > 1.05).length} whose 95 % interval reaches past 1.05.`,
    );
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
      proc.on('exit', (code) =>
        code === 0 ? resolve(JSON.parse(text.trim().split('\n').pop()!) as StreamResult) : reject(new Error(`stream child exited with ${code}`)),
      );
    });
  if (PHASES.includes('stream')) {
    const streamed = [await runChild('storage', 'copy'), await runChild('raw', 'copy'), await runChild('storage', 'view')];
    out();
    out(
      `Streamed save of ${(STREAM_BYTES / 1024 ** 3).toFixed(2)} GiB from a generated stream of unknown length, ${streamed[0]!.partSize / 1024 ** 2} MiB parts, ${streamed[0]!.queueSize} at a time, each in its own child process (plain node, built dist/):`,
    );
    out();
    out('| uploader | source chunks | seconds | MiB/s | peak RSS MB (maxRSS) | RSS before upload MB | highest VmRSS sample MB |');
    out('|---|---|---|---|---|---|---|');
    for (const r of streamed) {
      out(
        `| ${r.mode === 'raw' ? 'lib-storage Upload alone' : 'S3Storage.save'} | ${r.source === 'copy' ? 'new 64 KiB buffer each' : 'views of one buffer'} | ${r.seconds.toFixed(1)} | ${(r.bytes / 1024 ** 2 / r.seconds).toFixed(0)} | ${r.maxRssMb.toFixed(0)} | ${r.startRssMb.toFixed(0)} | ${r.sampledPeakRssMb.toFixed(0)} |`,
      );
    }
    out();
    const own = streamed.filter((r) => r.mode === 'storage');
    out(
      `S3Storage.save peak RSS: ${own.map((r) => `${r.maxRssMb.toFixed(0)} MB (${r.source === 'copy' ? 'allocating source' : 'non-allocating source'})`).join(', ')}; under 150 MB (the S3 issue's target): ${own.map((r) => (r.maxRssMb < 150 ? 'yes' : 'no')).join(', ')}. Growth during the save: ${own.map((r) => `${(r.maxRssMb - r.startRssMb).toFixed(0)} MB`).join(', ')}.`,
    );
    out();
  }
  if (process.env.BENCH_OUT) await appendFile(process.env.BENCH_OUT, `${lines.join('\n')}\n\n`);
  await target.stop();
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
