#!/usr/bin/env node
// Builds dist/ when it is missing or older than the sources, so `npm start` works on a fresh
// clone and after edits, and costs nothing (one directory walk) when dist is current.
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, rmSync, rmdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const inputs = ['src', 'tsup.config.ts', 'package.json', 'tsconfig.json'];

/** Every file the package's exports point at: all must exist and be newer than every input. */
function outputs() {
  const pkg = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8'));
  const files = new Set();
  const walk = (value) => {
    if (typeof value === 'string') {
      if (value.startsWith('./dist/')) files.add(path.join(root, value));
    } else if (value && typeof value === 'object') Object.values(value).forEach(walk);
  };
  walk(pkg.exports);
  return [...files];
}

function newestMtime(p) {
  const info = statSync(p, { throwIfNoEntry: false });
  if (!info) return 0;
  if (!info.isDirectory()) return info.mtimeMs;
  return Math.max(info.mtimeMs, ...readdirSync(p).map((name) => newestMtime(path.join(p, name))));
}

export function isStale() {
  const built = Math.min(...outputs().map((file) => statSync(file, { throwIfNoEntry: false })?.mtimeMs ?? 0));
  return inputs.some((input) => newestMtime(path.join(root, input)) > built);
}

export function buildIfStale({ quiet = false } = {}) {
  if (!isStale()) return false;
  // A lock directory keeps two starters (say, two test files) from building at once.
  const lock = path.join(root, 'node_modules', '.media-storage-build-lock');
  const deadline = Date.now() + 120_000;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      // A lock left by a killed build (older than any real build takes) is removed.
      const age = Date.now() - (statSync(lock, { throwIfNoEntry: false })?.mtimeMs ?? Date.now());
      if (age > 300_000) rmSync(lock, { recursive: true, force: true });
      if (Date.now() > deadline) throw new Error(`Timed out waiting for another build (remove ${lock} if stale)`);
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 250);
    }
  }
  try {
    if (!isStale()) return false;
    if (!quiet) console.log('media-storage: building dist/ (missing or older than src/) ...');
    const started = Date.now();
    const result = spawnSync(process.execPath, [path.join(root, 'node_modules', 'tsup', 'dist', 'cli-default.js')], {
      cwd: root,
      stdio: quiet ? 'pipe' : ['ignore', 'ignore', 'inherit'],
    });
    if (result.status !== 0) {
      if (quiet) process.stderr.write(result.stderr ?? '');
      throw new Error(`Build failed (exit ${result.status}); run "npm run build" to see why`);
    }
    if (!quiet) console.log(`media-storage: built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return true;
  } finally {
    rmdirSync(lock);
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  try {
    buildIfStale();
  } catch (err) {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  }
}
