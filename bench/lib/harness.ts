/**
 * The small harness every bench file uses: timing by medians of rounds (or, for network calls,
 * of every call while the subjects take turns), the machine's description, and results written as JSON (for the runner) and Markdown (for people).
 *
 * A bench file is a script `bench/<name>.bench.ts` that measures, then calls
 * {@link writeResults}. `bench/run.ts` runs every bench file in its own process and builds the
 * combined table from all `bench/results/*.json`. Bench files for other backends (S3,
 * Cloudinary, B2) plug in by doing the same.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const RESULTS_DIR = path.join(BENCH_DIR, 'results');

export interface Machine {
  cpus: number;
  cpuModel: string;
  node: string;
  platform: string;
  memoryGiB: number;
  /** 1-minute load average when the bench started: a busy machine makes every figure slower and noisier. */
  loadAverage: number;
  date: string;
}

export function machine(): Machine {
  let cpuModel = os.cpus()[0]?.model ?? 'unknown';
  try {
    // Some hypervisors report a generic model string; lscpu knows more when present.
    const lscpu = execFileSync('lscpu', { encoding: 'utf8' });
    const m = /Model name:\s*(.+)/.exec(lscpu);
    if (m && m[1]!.trim().length > cpuModel.length) cpuModel = m[1]!.trim();
  } catch {
    // lscpu is optional.
  }
  return {
    cpus: os.availableParallelism(),
    cpuModel: cpuModel.trim(),
    node: process.version,
    platform: `${os.platform()} ${os.release()} ${os.arch()}`,
    memoryGiB: Math.round((os.totalmem() / 2 ** 30) * 10) / 10,
    loadAverage: Math.round(os.loadavg()[0]! * 100) / 100,
    date: new Date().toISOString(),
  };
}

export interface TimingOptions {
  /** Rounds whose per-operation times are reduced to a median. */
  rounds: number;
  /** Operations per round (the round's time is divided by it). */
  iterations: number;
  /** Untimed operations before the first round. */
  warmup?: number;
}

/** Per-operation time in ms: the median over rounds of (round time / iterations). */
export async function medianMs(fn: (i: number) => Promise<unknown>, options: TimingOptions): Promise<{ medianMs: number; roundsMs: number[] }> {
  let n = 0;
  for (let i = 0; i < (options.warmup ?? 1); i++) await fn(n++);
  const roundsMs: number[] = [];
  for (let r = 0; r < options.rounds; r++) {
    const start = performance.now();
    for (let i = 0; i < options.iterations; i++) await fn(n++);
    roundsMs.push((performance.now() - start) / options.iterations);
  }
  return { medianMs: median(roundsMs), roundsMs };
}

/**
 * For operations of a millisecond or more (network calls): the subjects take turns call by call,
 * the first of each turn rotating, so a change in the shared machine's load hits all alike, and
 * every call is timed. A median over all calls shrugs off the occasional stalled request, which
 * can move the mean of a block of calls by tens of percent (one 40 ms stall in 40 calls of 2 ms). Answers each subject's call times (ms)
 * and its mean per round, in the order of `subjects`.
 */
export async function turnTakingTimes<S>(
  subjects: readonly S[],
  op: (subject: S, i: number) => Promise<unknown>,
  options: { rounds: number; iterations: number; warmupRounds?: number },
): Promise<Array<{ callsMs: number[]; roundMeansMs: number[] }>> {
  const results = subjects.map(() => ({ callsMs: [] as number[], roundMeansMs: [] as number[] }));
  const warmup = options.warmupRounds ?? 1;
  for (let round = -warmup; round < options.rounds; round++) {
    const sums = subjects.map(() => 0);
    for (let i = 0; i < options.iterations; i++) {
      for (let j = 0; j < subjects.length; j++) {
        const k = (i + round + warmup + j) % subjects.length;
        const start = performance.now();
        await op(subjects[k]!, i);
        const took = performance.now() - start;
        if (round < 0) continue;
        results[k]!.callsMs.push(took);
        sums[k] = sums[k]! + took;
      }
    }
    if (round >= 0) sums.forEach((sum, k) => results[k]!.roundMeansMs.push(sum / options.iterations));
  }
  return results;
}

/**
 * 95 % interval of median(b) / median(a), from 2,000 bootstrap resamples of the calls (unseeded).
 * The two sides are resampled independently although their calls were made in turns, which makes
 * the interval somewhat wider than a paired one: conservative.
 */
export function medianRatioInterval(a: readonly number[], b: readonly number[]): [number, number] {
  const resample = (values: readonly number[]): number[] => values.map(() => values[Math.floor(Math.random() * values.length)]!);
  const ratios = Array.from({ length: 2000 }, () => median(resample(b)) / median(resample(a))).sort((x, y) => x - y);
  return [ratios[Math.floor(ratios.length * 0.025)]!, ratios[Math.floor(ratios.length * 0.975)]!];
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

/** One measured cell: a subject (library) doing one case (operation and size). */
export interface Measurement {
  /** Row label, e.g. `save 1 MB`. */
  case: string;
  /** Column label, e.g. `media-storage` or `raw fs`. */
  subject: string;
  /** The figure, in `unit`. */
  value: number;
  /** `req/s` and `objects/s` are rates: higher is better, unlike the others. */
  unit: 'ms/op' | 'MiB' | 'bytes' | 'req/s' | 'ms' | 'µs/req' | 'objects/s';
  /** Per round, for the JSON record: the round's time per operation (its mean when `value` is a median over calls). */
  rounds?: number[];
}

export interface BenchResult {
  /** File-safe name, e.g. `local-disk`. */
  name: string;
  title: string;
  /** The subject every ratio is relative to (its column shows 1.00×). */
  baseline: string;
  /** Column order. */
  subjects: string[];
  measurements: Measurement[];
  machine: Machine;
  /** How it was run and what the figures mean. */
  notes: string[];
}

function formatValue(m: Measurement): string {
  if (m.unit === 'MiB') return `${m.value.toFixed(0)} MiB`;
  if (m.unit === 'objects/s') return `${Math.round(m.value).toLocaleString('en')}/s`;
  if (m.unit === 'bytes')
    return m.value >= 1e6 ? `${(m.value / 1e6).toFixed(2)} MB` : m.value >= 1e3 ? `${(m.value / 1e3).toFixed(1)} KB` : `${m.value.toFixed(0)} B`;
  if (m.unit === 'req/s') return `${m.value.toFixed(0)} req/s`;
  if (m.unit === 'µs/req') return `${m.value.toFixed(0)} µs CPU`;
  if (m.value >= 100) return `${m.value.toFixed(0)} ms`;
  if (m.value >= 1) return `${m.value.toFixed(2)} ms`;
  return `${(m.value * 1000).toFixed(0)} µs`;
}

/** Markdown table: one row per case, one column per subject, each cell "value (ratio×)". */
export function toMarkdownTable(result: BenchResult): string {
  const cases = [...new Set(result.measurements.map((m) => m.case))];
  const header = `| case | ${result.subjects.join(' | ')} |`;
  const rule = `|---|${result.subjects.map(() => '---:').join('|')}|`;
  const rows = cases.map((c) => {
    const base = result.measurements.find((m) => m.case === c && m.subject === result.baseline);
    const cells = result.subjects.map((s) => {
      const m = result.measurements.find((x) => x.case === c && x.subject === s);
      if (!m) return 'n/a';
      return base && base.value > 0 ? `${formatValue(m)} (${(m.value / base.value).toFixed(2)}×)` : formatValue(m);
    });
    return `| ${c} | ${cells.join(' | ')} |`;
  });
  return [header, rule, ...rows].join('\n');
}

export function describeMachine(m: Machine): string {
  return `${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.platform}, Node ${m.node}; load average ${m.loadAverage} at start; ${m.date}`;
}

export function toMarkdown(result: BenchResult, headingLevel = 2): string {
  return [
    `${'#'.repeat(headingLevel)} ${result.title}`,
    '',
    `Machine: ${describeMachine(result.machine)}.`,
    '',
    result.measurements.some((m) => m.unit === 'req/s' || m.unit === 'objects/s')
      ? `Rates (requests/s, objects/s): higher is better; everything else: lower is better. Ratios are relative to **${result.baseline}**.`
      : `Lower is better. Ratios are relative to **${result.baseline}**.`,
    '',
    toMarkdownTable(result),
    '',
    ...result.notes.map((n) => `- ${n}`),
    '',
  ].join('\n');
}

/** Writes `bench/results/<name>.json` and `.md`; returns their paths. */
export function writeResults(result: BenchResult): { json: string; md: string } {
  mkdirSync(RESULTS_DIR, { recursive: true });
  const json = path.join(RESULTS_DIR, `${result.name}.json`);
  const md = path.join(RESULTS_DIR, `${result.name}.md`);
  writeFileSync(json, `${JSON.stringify(result, null, 2)}\n`);
  writeFileSync(md, toMarkdown(result));
  return { json, md };
}

export function readResult(file: string): BenchResult {
  return JSON.parse(readFileSync(file, 'utf8')) as BenchResult;
}

/** `1 KiB`, `1 MiB`, `20 MiB`, `1 GiB` from bytes. */
export function sizeLabel(bytes: number): string {
  if (bytes >= 2 ** 30) return `${bytes / 2 ** 30} GiB`;
  if (bytes >= 2 ** 20) return `${bytes / 2 ** 20} MiB`;
  if (bytes >= 2 ** 10) return `${bytes / 2 ** 10} KiB`;
  return `${bytes} B`;
}

/** `bytes` of fresh 1 MiB chunks, made as they are read, so a library that buffered the body would show it in RSS. */
export function generatedStream(bytes: number, chunk = 1024 * 1024): Readable {
  let sent = 0;
  return Readable.from(
    (function* () {
      while (sent < bytes) {
        const n = Math.min(chunk, bytes - sent);
        sent += n;
        yield Buffer.alloc(n, sent % 251);
      }
    })(),
  );
}

/**
 * Runs `fn` while sampling this process's RSS every 5 ms. Sampled rather than getrusage's maxRSS,
 * which counts start-up (tsx compiling TypeScript) and, on Linux, a parent's peak carried over fork.
 */
export async function rssDuring(fn: () => Promise<unknown>): Promise<{ startMiB: number; peakMiB: number }> {
  const rss = (): number => process.memoryUsage().rss / 2 ** 20;
  const startMiB = rss();
  let peakMiB = startMiB;
  const sampler = setInterval(() => {
    peakMiB = Math.max(peakMiB, rss());
  }, 5);
  try {
    await fn();
  } finally {
    clearInterval(sampler);
  }
  return { startMiB, peakMiB: Math.max(peakMiB, rss()) };
}
