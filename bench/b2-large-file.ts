/**
 * B2 large-file benchmark: a 300 MB streamed save (length unknown up front) through the large-file
 * API, against the fake B2 running in its own process (its memory is not counted). Side by side:
 *
 * - media-storage: `B2Storage.save(key, stream)` (spools to a temp file, parts streamed from disk);
 * - raw backblaze-b2: what the SDK allows with a stream of unknown length: collect each part in a
 *   Buffer (the SDK hashes and sends Buffers), start / upload_part / finish.
 *
 * Each scenario runs in a fresh client process, so its peak RSS (getrusage maxrss) is its own.
 * Usage: npm run bench:b2 [-- --size-mb=300 --rounds=3]
 */
import { fork, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const root = path.resolve(here, '..');
const arg = (name: string, fallback: number): number => {
  const hit = process.argv.find((a) => a.startsWith(`--${name}=`));
  return hit ? Number(hit.split('=')[1]) : fallback;
};
const SIZE = arg('size-mb', 300) * 1_000_000;
const ROUNDS = arg('rounds', 3);
const PART_SIZE = 100_000_000; // B2's recommendedPartSize
const BUCKET = 'bench-bucket';

interface FakeInfo {
  url: string;
  authorizeUrl: string;
  /** v2 endpoint: the flat answer shape the raw SDK reads. */
  authorizeUrlV2: string;
  applicationKeyId: string;
  applicationKey: string;
}
interface Result {
  scenario: string;
  ms: number;
  maxRssMb: number;
  /** RSS once the modules are loaded, before the save. */
  baselineRssMb: number;
  size: number;
}

/**
 * `size` bytes of pseudo-random data, generated as read (never all in memory), in 64 KiB chunks:
 * what an upload arriving over HTTP (Node's IncomingMessage, busboy) hands the application.
 */
const CHUNK = 64 * 1024;
function generated(size: number): Readable {
  const block = createHash('sha512').update('seed').digest();
  const chunk = Buffer.alloc(CHUNK);
  for (let i = 0; i < chunk.length; i += block.length) block.copy(chunk, i);
  let sent = 0;
  let index = 0;
  return new Readable({
    highWaterMark: CHUNK,
    read() {
      if (sent >= size) return this.push(null);
      const n = Math.min(chunk.length, size - sent);
      const out = Buffer.from(chunk.subarray(0, n));
      out.writeUInt32BE(index++ % 2 ** 32, 0); // every chunk differs
      sent += n;
      this.push(out);
    },
  });
}

// ---------------------------------------------------------------------------- client process

async function runScenario(scenario: string, fake: FakeInfo): Promise<void> {
  const key = `bench/${scenario}-${Date.now()}.bin`;
  // Loaded before the clock starts, so the baseline RSS includes the code either way.
  const { B2Storage } = await import('../src/b2/index.js');
  createRequire(import.meta.url)('backblaze-b2');
  const baselineRssMb = process.memoryUsage().rss / 2 ** 20;
  const started = performance.now();
  if (scenario === 'media-storage') {
    const storage = new B2Storage({
      applicationKeyId: fake.applicationKeyId,
      applicationKey: fake.applicationKey,
      bucketName: BUCKET,
      apiUrl: fake.authorizeUrl,
      partSize: PART_SIZE,
      largeFileThreshold: 200_000_000,
    });
    const info = await storage.save(key, generated(SIZE));
    if (info.size !== SIZE) throw new Error(`stored ${info.size} bytes`);
  } else {
    await rawSdkUpload(fake, key);
  }
  const ms = performance.now() - started;
  const result: Result = { scenario, ms, maxRssMb: process.resourceUsage().maxRSS / 1024, baselineRssMb, size: SIZE };
  process.send!(result);
}

/** The raw SDK way for a stream of unknown length: each part gathered into a Buffer, then sent. */
async function rawSdkUpload(fake: FakeInfo, key: string): Promise<void> {
  const B2 = createRequire(import.meta.url)('backblaze-b2');
  const b2 = new B2({ applicationKeyId: fake.applicationKeyId, applicationKey: fake.applicationKey });
  await b2.authorize({ axiosOverride: { url: fake.authorizeUrlV2 } });
  const { data: buckets } = await b2.getBucket({ bucketName: BUCKET });
  const bucketId = buckets.buckets[0].bucketId;
  const { data: started } = await b2.startLargeFile({ bucketId, fileName: key, contentType: 'application/octet-stream' });
  const { data: target } = await b2.getUploadPartUrl({ fileId: started.fileId });
  const shas: string[] = [];
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  const sendPart = async (): Promise<void> => {
    const part = Buffer.concat(pending);
    pending = [];
    pendingBytes = 0;
    const hash = createHash('sha1').update(part).digest('hex');
    shas.push(hash);
    await b2.uploadPart({
      uploadUrl: target.uploadUrl,
      uploadAuthToken: target.authorizationToken,
      partNumber: shas.length,
      data: part,
      hash,
      axios: { maxBodyLength: Infinity, maxContentLength: Infinity },
    });
  };
  for await (const chunk of generated(SIZE)) {
    pending.push(chunk as Buffer);
    pendingBytes += (chunk as Buffer).length;
    if (pendingBytes >= PART_SIZE) await sendPart();
  }
  if (pendingBytes > 0) await sendPart();
  await b2.finishLargeFile({ fileId: started.fileId, partSha1Array: shas });
}

// ---------------------------------------------------------------------------- orchestration

function startFake(): Promise<{
  info: FakeInfo;
  stats: () => Promise<{ unfinished: number; versions: Array<{ fileName: string; size: number }> }>;
  stop: () => void;
}> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(root, 'test/support/fakes/b2-server.ts'), '--serve'], {
    cwd: root,
    stdio: ['ignore', 'pipe', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.stdout!.once('data', (line: Buffer) => {
      const info = JSON.parse(line.toString()) as FakeInfo;
      resolve({
        info,
        stats: () =>
          new Promise((res) => {
            child.once('message', (m) => res(m as never));
            child.send('stats');
          }),
        stop: () => child.kill('SIGTERM'),
      });
    });
  });
}

function runClient(scenario: string, fake: FakeInfo): Promise<Result> {
  const child = fork(fileURLToPath(import.meta.url), [`--scenario=${scenario}`, `--size-mb=${SIZE / 1_000_000}`], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, B2_BENCH_FAKE: JSON.stringify(fake) },
  });
  return new Promise((resolve, reject) => {
    let result: Result | undefined;
    child.on('message', (m) => (result = m as Result));
    child.on('exit', (code) => (result && code === 0 ? resolve(result) : reject(new Error(`${scenario} exited with ${code}`))));
  });
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

async function main(): Promise<void> {
  const scenarioArg = process.argv.find((a) => a.startsWith('--scenario='));
  if (scenarioArg) return runScenario(scenarioArg.split('=')[1]!, JSON.parse(process.env.B2_BENCH_FAKE!) as FakeInfo);

  const fake = await startFake();
  const results: Result[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      for (const scenario of ['media-storage', 'raw-sdk']) {
        const r = await runClient(scenario, fake.info);
        results.push(r);
        console.log(
          `round ${round} ${scenario}: ${(r.ms / 1000).toFixed(2)} s, peak RSS ${r.maxRssMb.toFixed(1)} MB (before the save ${r.baselineRssMb.toFixed(1)} MB)`,
        );
      }
    }
    const stats = await fake.stats();
    const stored = stats.versions.filter((v) => v.fileName.startsWith('bench/'));
    if (stats.unfinished !== 0) throw new Error(`${stats.unfinished} unfinished large files left at the fake`);
    if (stored.length !== ROUNDS * 2 || stored.some((v) => v.size !== SIZE)) throw new Error(`unexpected stored files: ${JSON.stringify(stored)}`);
  } finally {
    fake.stop();
  }

  const by = (s: string): Result[] => results.filter((r) => r.scenario === s);
  const ours = { ms: median(by('media-storage').map((r) => r.ms)), rss: Math.max(...by('media-storage').map((r) => r.maxRssMb)) };
  const raw = { ms: median(by('raw-sdk').map((r) => r.ms)), rss: Math.max(...by('raw-sdk').map((r) => r.maxRssMb)) };
  const mb = SIZE / 1_000_000;
  const cpu = os.cpus()[0]?.model ?? 'unknown CPU';
  const table = [
    `# B2 large-file benchmark`,
    '',
    `${new Date().toISOString()} — ${mb} MB streamed save (length unknown up front, 64 KiB chunks as from an HTTP upload), ${ROUNDS} rounds per scenario, fake B2 in its own process over loopback.`,
    `Machine: ${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB RAM, Node ${process.version}, load average at the end ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} (shared machine: timings are noisy).`,
    `Part size ${PART_SIZE / 1_000_000} MB (B2's recommendedPartSize). Peak RSS is the client process's getrusage maxrss (its whole life: Node, tsx, the SDK and the upload); time is wall-clock from save start to finish; medians of time, maximum of RSS.`,
    '',
    '| scenario | median time | throughput | peak RSS (max of rounds) | RSS before the save | RSS per round |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
    `| media-storage \`B2Storage.save(stream)\` | ${(ours.ms / 1000).toFixed(2)} s | ${(mb / (ours.ms / 1000)).toFixed(0)} MB/s | ${ours.rss.toFixed(1)} MB | ${median(by('media-storage').map((r) => r.baselineRssMb)).toFixed(0)} MB | ${by(
      'media-storage',
    )
      .map((r) => r.maxRssMb.toFixed(0))
      .join(', ')} |`,
    `| raw backblaze-b2 (part Buffers) | ${(raw.ms / 1000).toFixed(2)} s | ${(mb / (raw.ms / 1000)).toFixed(0)} MB/s | ${raw.rss.toFixed(1)} MB | ${median(by('raw-sdk').map((r) => r.baselineRssMb)).toFixed(0)} MB | ${by(
      'raw-sdk',
    )
      .map((r) => r.maxRssMb.toFixed(0))
      .join(', ')} |`,
    '',
    `Ratios (media-storage / raw SDK): time ${(ours.ms / raw.ms).toFixed(2)}×, peak RSS ${(ours.rss / raw.rss).toFixed(2)}×. Target: media-storage peak RSS < 150 MB — ${ours.rss < 150 ? 'met' : 'NOT met'}.`,
    '',
    "Reproduce: `npm run bench:b2` (options `-- --size-mb=300 --rounds=3`). The fake verifies every part's SHA-1 and the partSha1Array, and the run fails if any file is missing, has the wrong size, or a large file is left unfinished.",
    '',
  ].join('\n');
  await mkdir(path.join(here, 'results'), { recursive: true });
  await writeFile(path.join(here, 'results', 'b2.md'), table);
  console.log(`\n${table}`);
}

await main();
