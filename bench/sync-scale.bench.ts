/**
 * `syncStorages` in constant memory: a synthetic backend (test/support/synthetic-storage.ts) lists
 * generated keys without storing them, so a sync of 1,000,000 objects needs no bucket. At each
 * size, in a fresh child process: a first copy into an empty destination, a second run that finds
 * nothing to do (its throughput in objects/s), and a `--delete` run where a tenth of the
 * destination is stale. RSS is sampled every 5 ms through each run; the sizes side by side show
 * whether memory grows with the bucket.
 *
 *   npm run bench sync-scale
 *   BENCH_SYNC_SIZES=100000,1000000 npm run bench sync-scale
 */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { auditKeys } from '../src/cli/audit.js';
import { syncStorages } from '../src/cli/sync.js';
import { SyntheticStorage, syntheticKey } from '../test/support/synthetic-storage.js';
import { machine, rssDuring, writeResults, type Measurement } from './lib/harness.js';

const SIZES = (process.env.BENCH_SYNC_SIZES ?? '100000,250000,500000,1000000').split(',').map(Number);
const CONCURRENCY = 16;

interface RunFigures {
  startMiB: number;
  peakMiB: number;
  ms: number;
}

interface ChildResult {
  copy: RunFigures;
  noop: RunFigures;
  del: RunFigures;
  deleted: number;
  audit: RunFigures;
  lines: number;
}

async function timedRss(fn: () => Promise<unknown>): Promise<RunFigures> {
  const started = performance.now();
  const { startMiB, peakMiB } = await rssDuring(fn);
  return { startMiB, peakMiB, ms: performance.now() - started };
}

/** Child process: the three runs at one size, each checked. */
async function child(count: number): Promise<void> {
  const source = new SyntheticStorage({ count });
  const target = new SyntheticStorage({ count, holds: 'none' });
  const copy = await timedRss(async () => {
    const report = await syncStorages(source, target, { concurrency: CONCURRENCY });
    if (report.copied !== count || report.failed !== 0) throw new Error(`first copy: copied ${report.copied} of ${count}, failed ${report.failed}`);
  });
  if (!target.saves.every((n) => n === 1)) throw new Error('first copy: some object was not saved exactly once');
  const noop = await timedRss(async () => {
    const report = await syncStorages(source, target, { concurrency: CONCURRENCY });
    if (report.copied !== 0 || report.skipped !== count) throw new Error(`second run copied ${report.copied}`);
  });
  // A tenth of the destination is stale (its source object is gone), and stale twins besides.
  const thinned = new SyntheticStorage({ count, holds: (i) => i % 10 !== 3 });
  const stale = new SyntheticStorage({ count, stale: (i) => i % 100 === 0 });
  let deleted = 0;
  const del = await timedRss(async () => {
    const report = await syncStorages(thinned, stale, { concurrency: CONCURRENCY, delete: true });
    if (report.copied !== 0 || report.failed !== 0) throw new Error(`delete run copied ${report.copied}, failed ${report.failed}`);
    deleted = report.deleted;
  });
  const expected = Math.ceil((count - 3) / 10) + Math.ceil(count / 100);
  if (deleted !== expected) throw new Error(`delete run deleted ${deleted}, not ${expected}`);
  // audit: as many paths as objects, in scrambled order, every tenth listed twice, a twentieth missing.
  let lines = 0;
  async function* paths(): AsyncGenerator<string> {
    for (let j = 0; j < count; j++) {
      const i = (j * 7919) % count;
      const key = i % 20 === 7 ? `gone/${i}.jpg` : syntheticKey(i);
      yield key;
      lines++;
      if (j % 10 === 0) {
        yield key;
        lines++;
      }
    }
  }
  const audit = await timedRss(async () => {
    const report = await auditKeys(thinned, paths(), { concurrency: CONCURRENCY });
    let missing = 0;
    for (let i = 0; i < count; i++) if (i % 20 === 7 || i % 10 === 3) missing++;
    if (report.distinct !== count || report.total !== lines || report.counts.missing !== missing)
      throw new Error(`audit: ${report.distinct} distinct, ${report.counts.missing} missing (not ${missing})`);
  });
  process.stdout.write(`${JSON.stringify({ copy, noop, del, deleted, audit, lines } satisfies ChildResult)}\n`);
}

function runChild(count: number): Promise<ChildResult> {
  const self = fileURLToPath(import.meta.url);
  const proc = spawn(process.execPath, [...process.execArgv, self, '--child', String(count)], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code) =>
      code === 0 ? resolve(JSON.parse(out.trim().split('\n').pop()!) as ChildResult) : reject(new Error(`child for ${count} objects exited with ${code}`)),
    );
  });
}

const label = (count: number): string => `${count.toLocaleString('en')} objects`;

async function main(): Promise<void> {
  const started = Date.now();
  const measurements: Measurement[] = [];
  const noopRates: string[] = [];
  for (const count of SIZES) {
    const r = await runChild(count);
    const subject = label(count);
    measurements.push({ case: 'peak RSS, first copy into an empty destination', subject, value: r.copy.peakMiB, unit: 'MiB' });
    measurements.push({ case: 'peak RSS, second run (nothing to copy)', subject, value: r.noop.peakMiB, unit: 'MiB' });
    measurements.push({ case: 'peak RSS, run with --delete (10 % stale)', subject, value: r.del.peakMiB, unit: 'MiB' });
    measurements.push({ case: 'RSS growth, first copy', subject, value: r.copy.peakMiB - r.copy.startMiB, unit: 'MiB' });
    measurements.push({ case: 'second run (nothing to copy), throughput', subject, value: count / (r.noop.ms / 1000), unit: 'objects/s' });
    measurements.push({ case: 'first copy, throughput', subject, value: count / (r.copy.ms / 1000), unit: 'objects/s' });
    measurements.push({ case: 'peak RSS, audit of as many paths (scrambled, a tenth repeated)', subject, value: r.audit.peakMiB, unit: 'MiB' });
    measurements.push({ case: 'audit, paths/s', subject, value: r.lines / (r.audit.ms / 1000), unit: 'objects/s' });
    noopRates.push(`${subject}: ${(r.noop.ms / 1000).toFixed(1)} s`);
    process.stderr.write(
      `  ${subject}: copy ${(r.copy.ms / 1000).toFixed(1)} s, peak ${r.copy.peakMiB.toFixed(0)} MiB; no-op ${(r.noop.ms / 1000).toFixed(1)} s, peak ${r.noop.peakMiB.toFixed(0)} MiB; delete ${r.deleted} in ${(r.del.ms / 1000).toFixed(1)} s, peak ${r.del.peakMiB.toFixed(0)} MiB\n`,
    );
  }
  const paths = writeResults({
    name: 'sync-scale',
    title: 'Sync in constant memory: a synthetic bucket of up to 1,000,000 objects',
    baseline: label(SIZES[0]!),
    subjects: SIZES.map(label),
    measurements,
    machine: machine(),
    notes: [
      `Each size in a fresh child process: a first copy into an empty destination, a second run over the finished copy, then a run with \`delete\` where the source lacks a tenth of the objects and the destination also holds stale objects (1 %); concurrency ${CONCURRENCY}. Every run's outcome is checked (each object saved once, nothing copied on the second run, exactly the stale objects deleted).`,
      "The backend is test/support/synthetic-storage.ts: it lists generated keys (`obj/00000042.jpg`, 100-1,123 bytes each, MD5-shaped etags) through BaseStorage, like any backend, and a destination records what arrives in one byte per object (1 MB at 1,000,000), which is in the figures. There is no network: the figures are the sync's own CPU and memory.",
      'Audit: as many paths as objects, in scrambled order (so more than 100,000 are sorted through temp files), every tenth listed twice, checked with `exists` against the source of the delete run.',
      'RSS is sampled every 5 ms during each run and includes Node and the loaded code. Ratios against the smallest size show how memory grows with the bucket.',
      `Second-run times: ${noopRates.join('; ')}. Took ${Math.round((Date.now() - started) / 1000)} s.`,
    ],
  });
  process.stderr.write(`wrote ${paths.md}\n`);
}

const at = process.argv.indexOf('--child');
if (at >= 0) await child(Number(process.argv[at + 1]));
else await main();
