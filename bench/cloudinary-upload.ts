/**
 * Streamed upload to Cloudinary: media-storage's save (chunked above chunkSize) against the raw
 * SDK doing the same upload (upload_chunked_stream, and a single upload_stream), each in its own
 * process against the fake Cloudinary, reporting wall time and peak RSS (medians of the rounds).
 *
 *   npm run build && npx -y -p node@24 node bench/cloudinary-upload.ts [MiB=200] [rounds=3]
 *
 * (Node 24 runs the TypeScript directly; the adapter is loaded from dist/.)
 */
import { fork } from 'node:child_process';
import os from 'node:os';
// Node 24 loads the .ts file itself; the type comes from the same module for the type checker.
const { FakeCloudinary } = (await import(
  new URL('../test/support/fakes/cloudinary-server.ts', import.meta.url).href
)) as typeof import('../test/support/fakes/cloudinary-server.js');

const mib = Number(process.argv[2] ?? 200);
const rounds = Number(process.argv[3] ?? 3);
const size = mib * 1024 * 1024;
const chunkSize = 20 * 1024 * 1024;
const variants = ['media-storage', 'sdk upload_chunked_stream', 'sdk upload_stream'];

const fake = await new FakeCloudinary([{ cloudName: 'bench-cloud', apiKey: '999999999999999', apiSecret: 'bench-secret-abcdefghijkl' }]).start();
fake.maxFileSize = Number.MAX_SAFE_INTEGER;
const results = new Map<string, Array<{ ms: number; maxRssMiB: number }>>();

for (let round = 0; round < rounds; round++) {
  for (const variant of variants) {
    const child = fork(new URL('./cloudinary-upload-child.ts', import.meta.url), [variant, fake.url, String(size), String(chunkSize)], { stdio: 'inherit' });
    const result = await new Promise<{ ms: number; maxRssMiB: number }>((resolve, reject) => {
      child.once('message', (m) => resolve(m as { ms: number; maxRssMiB: number }));
      child.once('exit', (code) => (code ? reject(new Error(`${variant} exited with ${code}`)) : undefined));
    });
    await new Promise((r) => child.once('exit', r));
    fake.assets.clear();
    const list = results.get(variant) ?? [];
    list.push(result);
    results.set(variant, list);
  }
}
await fake.stop();

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ours = results.get('media-storage')!;
const oursMs = median(ours.map((r) => r.ms));
const oursRss = median(ours.map((r) => r.maxRssMiB));
console.log(
  `\nStreamed upload of ${mib} MiB in 64 KiB pieces, chunk size ${chunkSize / 1024 / 1024} MiB, ${rounds} rounds (medians), fake Cloudinary on loopback`,
);
console.log(`${os.cpus()[0]?.model ?? 'cpu'} x${os.cpus().length}, Node ${process.version}\n`);
console.log('| variant | time (ms) | peak RSS (MiB) | time vs media-storage | peak RSS vs media-storage |');
console.log('| --- | ---: | ---: | ---: | ---: |');
for (const variant of variants) {
  const rs = results.get(variant)!;
  const ms = median(rs.map((r) => r.ms));
  const rss = median(rs.map((r) => r.maxRssMiB));
  console.log(`| ${variant} | ${ms.toFixed(0)} | ${rss.toFixed(0)} | ${(ms / oursMs).toFixed(2)}x | ${(rss / oursRss).toFixed(2)}x |`);
}
