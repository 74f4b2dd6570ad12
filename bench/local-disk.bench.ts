/**
 * Local disk: media-storage's LocalStorage against raw `node:fs`, flydrive 2's fs driver and
 * flystorage's local adapter, for save, read and exists of 1 KiB, 1 MiB and 20 MiB; and the peak RSS
 * of a 1 GiB streamed save, each library in its own child process.
 *
 * Run through `npm run bench` (which uses Node 24, as flydrive 2 requires), or alone:
 * `npx -y -p node@24 node --import tsx bench/local-disk.bench.ts`.
 */
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { access, mkdir, mkdtemp, readFile, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { FileStorage } from '@flystorage/file-storage';
import { LocalStorageAdapter } from '@flystorage/local-fs';
import { Disk } from 'flydrive';
import { FSDriver } from 'flydrive/drivers/fs';
import { LocalStorage } from '../src/local/index.js';
import { generatedStream, machine, medianMs, rssDuring, sizeLabel, writeResults, type Measurement } from './lib/harness.js';

/** What each library is asked to do; `key` is a relative path under its own root. */
interface Subject {
  name: string;
  /** Its own folder. */
  root: string;
  save(key: string, data: Buffer): Promise<unknown>;
  read(key: string): Promise<Uint8Array>;
  exists(key: string): Promise<boolean>;
  saveStream(key: string, stream: Readable): Promise<unknown>;
}

function subjects(rootOf: (name: string) => string): Subject[] {
  const rawRoot = rootOf('raw');
  const media = new LocalStorage({ root: rootOf('media-storage'), warnOnEphemeralDisk: false });
  const fly = new Disk(new FSDriver({ location: rootOf('flydrive'), visibility: 'public' }));
  const flystorage = new FileStorage(new LocalStorageAdapter(rootOf('flystorage')));
  return [
    {
      // The floor: no temp file, no rename, no key checks, no content type.
      name: 'raw fs',
      root: rawRoot,
      save: (key, data) => writeFile(path.join(rawRoot, key), data),
      read: (key) => readFile(path.join(rawRoot, key)),
      exists: (key) =>
        access(path.join(rawRoot, key)).then(
          () => true,
          () => false,
        ),
      saveStream: (key, stream) => pipeline(stream, createWriteStream(path.join(rawRoot, key))),
    },
    {
      // The floor of the same safety, done raw: a save is a temp file renamed into a folder whose
      // real path was checked (atomic, contained); a read or exists resolves the real path (the
      // containment and link check) first. No key rule, no content type, no error mapping, no info.
      name: 'raw safe fs',
      root: rootOf('raw-safe'),
      save: async (key, data) => {
        const root = rootOf('raw-safe');
        const dir = await realpath(path.join(root, path.dirname(key)));
        const temp = path.join(root, '.tmp', randomBytes(12).toString('hex'));
        await writeFile(temp, data, { flag: 'wx' });
        await rename(temp, path.join(dir, path.basename(key)));
      },
      read: async (key) => readFile(await realpath(path.join(rootOf('raw-safe'), key))),
      exists: async (key) => {
        try {
          return (await stat(await realpath(path.join(rootOf('raw-safe'), key)))).isFile();
        } catch {
          return false;
        }
      },
      saveStream: async (key, stream) => {
        const root = rootOf('raw-safe');
        const dir = await realpath(path.join(root, path.dirname(key)));
        const temp = path.join(root, '.tmp', randomBytes(12).toString('hex'));
        await pipeline(stream, createWriteStream(temp, { flags: 'wx' }));
        await rename(temp, path.join(dir, path.basename(key)));
      },
    },
    {
      name: 'media-storage',
      root: rootOf('media-storage'),
      save: (key, data) => media.save(key, data),
      read: (key) => media.readBuffer(key),
      exists: (key) => media.exists(key),
      saveStream: (key, stream) => media.save(key, stream),
    },
    {
      name: 'flydrive 2 (fs)',
      root: rootOf('flydrive'),
      save: (key, data) => fly.put(key, data),
      read: (key) => fly.getBytes(key),
      exists: (key) => fly.exists(key),
      saveStream: (key, stream) => fly.putStream(key, stream),
    },
    {
      name: 'flystorage (local-fs)',
      root: rootOf('flystorage'),
      save: (key, data) => flystorage.write(key, data),
      read: (key) => flystorage.readToBuffer(key),
      exists: (key) => flystorage.fileExists(key),
      saveStream: (key, stream) => flystorage.write(key, stream),
    },
  ];
}

const SIZES = [1024, 1024 * 1024, 20 * 1024 * 1024];
/** Operations per round by size: enough work per round to rise above timer noise, little enough to finish. */
const ITERATIONS: Record<number, number> = { [1024]: 200, [1024 * 1024]: 20, [20 * 1024 * 1024]: 3 };
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const RSS_BYTES = Number(process.env.BENCH_RSS_BYTES ?? 2 ** 30);
/** Child process: one streamed save of RSS_BYTES with one library; prints its peak RSS. */
async function rssChild(subjectName: string): Promise<void> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-rss-'));
  try {
    const subject = subjects((n) => path.join(dir, n)).find((s) => s.name === subjectName)!;
    await mkdir(path.join(dir, 'raw'), { recursive: true });
    await mkdir(path.join(dir, 'raw-safe', '.tmp'), { recursive: true });
    const { startMiB, peakMiB } = await rssDuring(() => subject.saveStream('big.bin', generatedStream(RSS_BYTES)));
    const file = path.join(subject.root, 'big.bin');
    const size = (await stat(file)).size;
    if (size !== RSS_BYTES) throw new Error(`${subjectName} stored ${size} bytes, not ${RSS_BYTES}`);
    process.stdout.write(`${JSON.stringify({ peakMiB, startMiB })}\n`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const started = Date.now();
  const dir = await mkdtemp(path.join(os.tmpdir(), 'bench-local-'));
  const measurements: Measurement[] = [];
  try {
    const rootOf = (name: string): string => path.join(dir, name);
    // The raw floors get their folders made up front: they do no mkdir per save.
    for (const sub of ['check', 'save']) await mkdir(path.join(rootOf('raw'), sub), { recursive: true });
    for (const sub of ['check', 'save', '.tmp']) await mkdir(path.join(rootOf('raw-safe'), sub), { recursive: true });
    const all = subjects(rootOf);
    for (const size of SIZES) {
      const data = randomBytes(size);
      const iterations = ITERATIONS[size]!;
      // Correctness first: a fast wrong answer is not a result.
      for (const s of all) {
        await s.save(`check/${size}.bin`, data);
        const back = Buffer.from(await s.read(`check/${size}.bin`));
        if (!back.equals(data) || !(await s.exists(`check/${size}.bin`))) throw new Error(`${s.name} did not round-trip ${size} bytes`);
      }
      const cases: Array<[string, (s: Subject, i: number) => Promise<unknown>]> = [
        // Replacing one of 8 keys: the avatar-update pattern (write a new version over an old one).
        [`save ${sizeLabel(size)}`, (s, i) => s.save(`save/${size}-${i % 8}.bin`, data)],
        [`read ${sizeLabel(size)}`, (s) => s.read(`check/${size}.bin`)],
        [`exists ${sizeLabel(size)}`, (s) => s.exists(`check/${size}.bin`)],
      ];
      for (const [label, op] of cases) {
        const rounds = new Map<string, number[]>(all.map((s) => [s.name, []]));
        for (let r = 0; r < ROUNDS; r++) {
          // Rotate who goes first, so drift in the machine's load does not favour one column.
          for (let j = 0; j < all.length; j++) {
            const s = all[(j + r) % all.length]!;
            const { roundsMs } = await medianMs((i) => op(s, i), { rounds: 1, iterations, warmup: r === 0 ? 2 : 0 });
            rounds.get(s.name)!.push(roundsMs[0]!);
          }
        }
        for (const s of all) {
          const values = rounds.get(s.name)!;
          const sorted = [...values].sort((a, b) => a - b);
          measurements.push({ case: label, subject: s.name, value: sorted[sorted.length >> 1]!, unit: 'ms/op', rounds: values });
        }
        process.stderr.write(`  ${label} done\n`);
      }
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // Peak RSS, each library alone in a fresh process.
  const self = fileURLToPath(import.meta.url);
  for (const s of subjects(() => os.tmpdir())) {
    const child = spawnSync(process.execPath, [...process.execArgv, self, '--rss', s.name], { encoding: 'utf8', env: process.env, maxBuffer: 1 << 20 });
    if (child.status !== 0) throw new Error(`RSS child for ${s.name} failed: ${child.stderr}`);
    const { peakMiB, startMiB } = JSON.parse(child.stdout.trim().split('\n').pop()!) as { peakMiB: number; startMiB: number };
    measurements.push({ case: `peak RSS during a ${sizeLabel(RSS_BYTES)} streamed save`, subject: s.name, value: peakMiB, unit: 'MiB' });
    measurements.push({ case: `RSS growth during a ${sizeLabel(RSS_BYTES)} streamed save`, subject: s.name, value: peakMiB - startMiB, unit: 'MiB' });
    process.stderr.write(`  RSS ${s.name}: ${startMiB.toFixed(0)} -> ${peakMiB.toFixed(0)} MiB\n`);
  }

  const paths = writeResults({
    name: 'local-disk',
    title: 'Local disk: media-storage vs raw fs, flydrive and flystorage',
    baseline: 'raw fs',
    subjects: ['raw fs', 'raw safe fs', 'media-storage', 'flydrive 2 (fs)', 'flystorage (local-fs)'],
    measurements,
    machine: machine(),
    notes: [
      `Median of ${ROUNDS} rounds; a round is ${ITERATIONS[1024]} (1 KiB), ${ITERATIONS[1024 * 1024]} (1 MiB) or ${ITERATIONS[20 * 1024 * 1024]} (20 MiB) sequential operations; subjects take turns within each round, the first one rotating.`,
      '`save` replaces one of 8 keys with a Buffer; `read` reads a whole file into memory; `exists` asks for a file that exists.',
      'raw fs is `writeFile`/`readFile`/`access`: no temp file and rename (not atomic), no key checks, no content type. media-storage writes a temp file and renames it, so a reader never sees half a file.',
      'raw safe fs is the floor of that safety done raw: save = realpath of the folder, `writeFile` of a temp file (`wx`), `rename`; read = `realpath` then `readFile`; exists = `realpath` then `stat`. media-storage against it is the cost of everything else (key rule, content type, errors, the info a save returns).',
      'RSS: one run per library, each in a fresh process that streams fresh 1 MiB chunks to one file; RSS is sampled every 5 ms during the save. "Peak" includes Node and the loaded code; "growth" is peak minus RSS just before the save. Flat growth means the body is streamed, not buffered.',
      `Took ${Math.round((Date.now() - started) / 1000)} s.`,
    ],
  });
  process.stderr.write(`wrote ${paths.md}\n`);
}

const rssAt = process.argv.indexOf('--rss');
if (rssAt >= 0) await rssChild(process.argv[rssAt + 1]!);
else await main();
