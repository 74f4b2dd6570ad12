/**
 * `npm run bench [name...]`: runs every `bench/*.bench.ts` (or the named ones), each in its own
 * Node 24 process (flydrive 2 needs it), then combines every `bench/results/*.json` into
 * `bench/results/summary.md` and the results section of docs/performance.md.
 *
 * Node 24 is this process's Node when it is 24 or later, else `BENCH_NODE`, else the npm package
 * `node@24` through npx.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_DIR, readResult, RESULTS_DIR, toMarkdown } from './lib/harness.js';

const DOC = path.join(BENCH_DIR, '..', 'docs', 'performance.md');
const START = '<!-- bench-results:start -->';
const END = '<!-- bench-results:end -->';

function node24(): string {
  if (Number(process.versions.node.split('.')[0]) >= 24) return process.execPath;
  if (process.env.BENCH_NODE) return process.env.BENCH_NODE;
  process.stderr.write('fetching Node 24 (npm package node@24) through npx...\n');
  return execFileSync('npx', ['-y', '-p', 'node@24', 'node', '-p', 'process.execPath'], { encoding: 'utf8' }).trim();
}

function benchFiles(only: string[]): string[] {
  const all = readdirSync(BENCH_DIR)
    .filter((f) => f.endsWith('.bench.ts'))
    .sort();
  const chosen = only.length ? all.filter((f) => only.some((o) => f === o || f === `${o}.bench.ts`)) : all;
  if (only.length && chosen.length !== only.length) throw new Error(`unknown bench file in ${only.join(', ')}; have ${all.join(', ')}`);
  return chosen;
}

function combine(headingLevel: number): string {
  const files = existsSync(RESULTS_DIR)
    ? readdirSync(RESULTS_DIR)
        .filter((f) => f.endsWith('.json'))
        .sort()
    : [];
  return files.map((f) => toMarkdown(readResult(path.join(RESULTS_DIR, f)), headingLevel)).join('\n');
}

function main(): void {
  const files = benchFiles(process.argv.slice(2));
  const node = node24();
  const failed: string[] = [];
  for (const file of files) {
    process.stderr.write(`\n== ${file} (${execFileSync(node, ['--version'], { encoding: 'utf8' }).trim()})\n`);
    const run = spawnSync(node, ['--import', 'tsx', path.join(BENCH_DIR, file)], { stdio: 'inherit', cwd: path.join(BENCH_DIR, '..') });
    if (run.status !== 0) failed.push(file);
  }
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(path.join(RESULTS_DIR, 'summary.md'), `# Benchmark results\n\n${combine(2)}`);
  if (existsSync(DOC)) {
    const doc = readFileSync(DOC, 'utf8');
    const from = doc.indexOf(START);
    const to = doc.indexOf(END);
    if (from >= 0 && to > from) writeFileSync(DOC, `${doc.slice(0, from + START.length)}\n\n${combine(3)}\n${doc.slice(to)}`);
  }
  process.stderr.write(`\nwrote ${path.relative(process.cwd(), path.join(RESULTS_DIR, 'summary.md'))} and the results section of docs/performance.md\n`);
  if (failed.length) {
    process.stderr.write(`failed: ${failed.join(', ')}\n`);
    process.exitCode = 1;
  }
}

main();
