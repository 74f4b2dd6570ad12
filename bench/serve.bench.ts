/**
 * Serving files over HTTP: media-storage's handler on the local disk and on memory, against
 * serve-static 2 (what `express.static` uses) on the same folder and a plain node:http floor
 * answering from memory. autocannon drives each server in turn with 50 connections requesting
 * 50 different files; each server runs in its own process (bench/serve-child.ts), so its CPU
 * time per request and its peak RSS are its own.
 *
 * Cases: 40 KiB and 2 MiB files; a full GET, a conditional GET answered 304 (If-None-Match with
 * the file's ETag), and a Range GET of 16 KiB answered 206; and 40 KiB full GETs over 500
 * connections (overload). Per case: requests/s, p50 and p99 latency, CPU per request and the
 * server's peak RSS.
 *
 * `npm run bench serve`, or alone: `node --import tsx bench/serve.bench.ts`. Environment:
 * BENCH_SERVE_SECONDS (per round, default 5), BENCH_SERVE_ROUNDS (default 3), BENCH_SERVE_WARMUP_SECONDS
 * (an unmeasured round per server and case first, default 1),
 * BENCH_SERVE_CONNECTIONS (default 50), BENCH_SERVE_OVERLOAD_CONNECTIONS (default 500; 0 skips).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import autocannon from 'autocannon';
import { machine, median, sizeLabel, writeResults, type Measurement } from './lib/harness.js';

const SECONDS = Number(process.env.BENCH_SERVE_SECONDS ?? 5);
const ROUNDS = Number(process.env.BENCH_SERVE_ROUNDS ?? 3);
/** Each server's unmeasured round before a case (0 skips): the first round of a fresh server ran up to 1.5× slower, its code not yet compiled. */
const WARMUP_SECONDS = Number(process.env.BENCH_SERVE_WARMUP_SECONDS ?? 1);
const CONNECTIONS = Number(process.env.BENCH_SERVE_CONNECTIONS ?? 50);
const OVERLOAD_CONNECTIONS = Number(process.env.BENCH_SERVE_OVERLOAD_CONNECTIONS ?? 500);
const RANGE_BYTES = 16 * 1024;

// autocannon appends every response body to a string (`body += chunk`, a UTF-8 decode of each
// chunk), for its `expectBody` option: with random 2 MiB bodies that alone capped every server
// near 22 req/s on the reference machine, and took a third of the client's CPU at 40 KiB, so the
// load generator, not the server, was measured. Bodies are checked here before timing instead.
const queue = createRequire(import.meta.url)('autocannon/lib/pipelinedRequestsQueue.js') as { prototype: { addBody?: unknown } };
if (typeof queue.prototype.addBody !== 'function') throw new Error('autocannon changed: PipelinedRequestsQueue.addBody is gone; review the patch above');
queue.prototype.addBody = function addBody(): void {};

const ALL_SERVERS = [
  { kind: 'serve-static', label: 'serve-static 2' },
  { kind: 'local', label: 'media-storage local' },
  { kind: 'memory', label: 'media-storage memory' },
  { kind: 'plain', label: 'plain http (floor)' },
] as const;
/** `BENCH_SERVE_SERVERS=serve-static,local` runs some servers only (the first named is still the baseline when present). */
const SERVERS = process.env.BENCH_SERVE_SERVERS ? ALL_SERVERS.filter((s) => process.env.BENCH_SERVE_SERVERS!.split(',').includes(s.kind)) : ALL_SERVERS;
/** `BENCH_SERVE_CASES="2 MiB full GET,40 KiB Range"` runs the cases whose label starts with one of these only. */
const CASES = process.env.BENCH_SERVE_CASES?.split(',').map((c) => c.trim());

const SIZES = [
  { bytes: 40 * 1024, files: 50, folder: 'small' },
  { bytes: 2 * 1024 * 1024, files: 50, folder: 'large' },
];

const MODES = ['full', '304', 'range'] as const;
const MEDIA_STORAGE = new Set(['local', 'memory']);
type Mode = (typeof MODES)[number];
const EXPECTED_STATUS: Record<Mode, number> = { full: 200, '304': 304, range: 206 };

interface Server {
  kind: string;
  label: string;
  child: ChildProcess;
  port: number;
}

interface Usage {
  cpuMicros: number;
  peakRssBytes: number;
}

function start(kind: string, label: string, root: string): Promise<Server> {
  const child = fork(path.join(path.dirname(fileURLToPath(import.meta.url)), 'serve-child.ts'), [kind, root], {
    execArgv: ['--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve({ kind, label, child, port: (m as { port: number }).port }));
    child.once('exit', (code) => reject(new Error(`${kind} server exited with ${code}`)));
  });
}

function usage(server: Server): Promise<Usage> {
  return new Promise((resolve) => {
    server.child.once('message', (m) => resolve(m as Usage));
    server.child.send('usage');
  });
}

/** A JPEG-looking file: the JPEG magic, then random bytes (so every backend serves image/jpeg). */
function jpegLike(bytes: number): Buffer {
  const body = randomBytes(bytes);
  body.set([0xff, 0xd8, 0xff, 0xe0], 0);
  return body;
}

/** A GET through node:http, which (unlike fetch) adds no Cache-Control to conditional requests, as autocannon does not. */
function get(
  server: Server,
  p: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; etag?: string; body: Buffer; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: server.port, path: p, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, etag: res.headers.etag, body: Buffer.concat(chunks), headers: res.headers }));
        res.on('error', reject);
      })
      .on('error', reject);
  });
}

async function etagsOf(server: Server, paths: string[]): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const p of paths) {
    const { status, etag } = await get(server, p);
    if (status !== 200 || !etag) throw new Error(`${server.label}: GET ${p} gave ${status}, ETag ${etag}`);
    out.set(p, etag);
  }
  return out;
}

/**
 * Correctness before speed: each server answers each mode with the right status and bytes, and
 * media-storage's handler with its serving headers (the rules must hold at full speed).
 */
async function check(server: Server, p: string, expected: Buffer, etag: string): Promise<void> {
  const full = await get(server, p);
  if (full.status !== 200 || !full.body.equals(expected)) throw new Error(`${server.label}: ${p} served the wrong bytes`);
  const notModified = await get(server, p, { 'if-none-match': etag });
  if (notModified.status !== 304) throw new Error(`${server.label}: If-None-Match gave ${notModified.status}`);
  const ranged = await get(server, p, { range: `bytes=1000-${1000 + RANGE_BYTES - 1}` });
  if (ranged.status !== 206 || !ranged.body.equals(expected.subarray(1000, 1000 + RANGE_BYTES)))
    throw new Error(`${server.label}: Range gave ${ranged.status}`);
  if (!MEDIA_STORAGE.has(server.kind)) return;
  for (const res of [full, notModified, ranged]) {
    if (res.headers['x-content-type-options'] !== 'nosniff' || res.headers['content-type'] !== 'image/jpeg' || !res.headers['cache-control']) {
      throw new Error(`${server.label}: ${res.status} without its serving headers: ${JSON.stringify(res.headers)}`);
    }
  }
}

interface RoundResult {
  requestsPerSecond: number;
  p50: number;
  p99: number;
  requests: number;
  cpuMicros: number;
  peakRssBytes: number;
}

async function round(server: Server, paths: string[], etags: Map<string, string>, mode: Mode, connections: number, seconds = SECONDS): Promise<RoundResult> {
  const requests = paths.map((p) => ({
    method: 'GET' as const,
    path: p,
    headers: mode === '304' ? { 'if-none-match': etags.get(p)! } : mode === 'range' ? { range: `bytes=1000-${1000 + RANGE_BYTES - 1}` } : {},
  }));
  const before = await usage(server);
  const result = await autocannon({ url: `http://127.0.0.1:${server.port}`, connections, duration: seconds, requests });
  const after = await usage(server);
  const codes = result.statusCodeStats as unknown as Record<string, { count: number }>;
  const wrong = Object.entries(codes).filter(([code]) => Number(code) !== EXPECTED_STATUS[mode]);
  if (result.errors || result.timeouts || wrong.length) {
    throw new Error(`${server.label} ${mode}: ${result.errors} errors, ${result.timeouts} timeouts, statuses ${JSON.stringify(codes)}`);
  }
  const done = result.requests.total;
  // autocannon counts only answers that arrive within the round: with 2 MiB bodies shared fairly
  // over 50 connections under load, a 1 s round can end before any answer does. Say so, not 0 req/s.
  if (done === 0) throw new Error(`${server.label} ${mode}: no answer completed within ${seconds} s; make BENCH_SERVE_SECONDS longer`);
  return {
    requestsPerSecond: done / seconds,
    p50: result.latency.p50,
    p99: result.latency.p99,
    requests: done,
    cpuMicros: after.cpuMicros - before.cpuMicros,
    peakRssBytes: after.peakRssBytes,
  };
}

async function main(): Promise<void> {
  const started = Date.now();
  const root = await mkdtemp(path.join(os.tmpdir(), 'bench-serve-'));
  const contents = new Map<string, Buffer>();
  for (const size of SIZES) {
    await mkdir(path.join(root, size.folder), { recursive: true });
    for (let i = 0; i < size.files; i++) {
      const bytes = jpegLike(size.bytes);
      await writeFile(path.join(root, size.folder, `p${i}.jpg`), bytes);
      contents.set(`/media/${size.folder}/p${i}.jpg`, bytes);
    }
  }
  const servers: Server[] = [];
  const measurements: Measurement[] = [];
  const machineAtStart = machine();
  try {
    for (const s of SERVERS) servers.push(await start(s.kind, s.label, root));
    for (const size of SIZES) {
      const paths = Array.from({ length: size.files }, (_, i) => `/media/${size.folder}/p${i}.jpg`);
      const etags = new Map<Server, Map<string, string>>();
      for (const server of servers) {
        etags.set(server, await etagsOf(server, paths));
        await check(server, paths[0]!, contents.get(paths[0]!)!, etags.get(server)!.get(paths[0]!)!);
      }
      const cases: Array<{ mode: Mode; connections: number }> = MODES.map((mode) => ({ mode, connections: CONNECTIONS }));
      if (size === SIZES[0] && OVERLOAD_CONNECTIONS > 0) cases.push({ mode: 'full', connections: OVERLOAD_CONNECTIONS });
      for (const { mode, connections } of cases) {
        const what = mode === 'full' ? 'full GET' : mode === '304' ? 'GET → 304' : `Range ${sizeLabel(RANGE_BYTES)}`;
        const label = `${sizeLabel(size.bytes)} ${what}${connections === CONNECTIONS ? '' : `, ${connections} connections`}`;
        if (CASES && !CASES.some((c) => label.startsWith(c))) continue;
        const rounds = new Map<Server, RoundResult[]>(servers.map((s) => [s, []]));
        if (WARMUP_SECONDS > 0) for (const server of servers) await round(server, paths, etags.get(server)!, mode, connections, WARMUP_SECONDS);
        // Servers take turns round by round, the first one rotating, so drift in the machine's
        // load does not favour one column.
        for (let r = 0; r < ROUNDS; r++) {
          for (let j = 0; j < servers.length; j++) {
            const server = servers[(j + r) % servers.length]!;
            rounds.get(server)!.push(await round(server, paths, etags.get(server)!, mode, connections));
          }
        }
        for (const server of servers) {
          const rs = rounds.get(server)!;
          const requests = rs.reduce((sum, x) => sum + x.requests, 0);
          const cpu = rs.reduce((sum, x) => sum + x.cpuMicros, 0);
          measurements.push(
            {
              case: `${label}: requests/s`,
              subject: server.label,
              value: median(rs.map((x) => x.requestsPerSecond)),
              unit: 'req/s',
              rounds: rs.map((x) => x.requestsPerSecond),
            },
            { case: `${label}: p50 latency`, subject: server.label, value: median(rs.map((x) => x.p50)), unit: 'ms', rounds: rs.map((x) => x.p50) },
            { case: `${label}: p99 latency`, subject: server.label, value: median(rs.map((x) => x.p99)), unit: 'ms', rounds: rs.map((x) => x.p99) },
            { case: `${label}: CPU per request`, subject: server.label, value: cpu / requests, unit: 'µs/req' },
            { case: `${label}: peak RSS`, subject: server.label, value: Math.max(...rs.map((x) => x.peakRssBytes)) / 2 ** 20, unit: 'MiB' },
          );
          process.stderr.write(
            `  ${label} ${server.label}: ${rs.map((x) => x.requestsPerSecond.toFixed(0)).join(' / ')} req/s, p99 ${rs.map((x) => x.p99).join(' / ')} ms\n`,
          );
        }
      }
    }
  } finally {
    for (const server of servers) server.child.send('exit');
    await rm(root, { recursive: true, force: true });
  }

  const paths = writeResults({
    // A filtered run keeps the full run's results file.
    name: process.env.BENCH_SERVE_SERVERS || CASES ? 'serve-partial' : 'serve',
    title: 'Serving files over HTTP: media-storage handler vs serve-static and a plain-http floor',
    baseline: 'serve-static 2',
    subjects: SERVERS.map((s) => s.label),
    measurements,
    machine: machineAtStart,
    notes: [
      `autocannon, ${CONNECTIONS} connections (${OVERLOAD_CONNECTIONS} in the overload row) cycling through 50 different files per size, ${ROUNDS} rounds of ${SECONDS} s per server and case after an unmeasured ${WARMUP_SECONDS} s round each; the servers take turns round by round, the first one rotating. Figures are medians over rounds; CPU per request is the server process's user+system CPU (all its threads) over all its rounds divided by the requests it answered; peak RSS is the server process's highest RSS (sampled every 20 ms) in any round of the case, the memory server's copy of the files included.`,
      "autocannon's own copy of each response body is switched off (it decoded every body into a string, which made the load generator the bottleneck on 2 MiB files); bodies and headers are checked before timing.",
      'Requests/s: higher is better. Latency, CPU and memory: lower is better. The load generator runs in the bench process on the same machine, so every server shares the cores with it alike.',
      'serve-static serves the same folder under /media; media-storage memory holds the same files in a MemoryStorage; the plain-http floor answers from buffers with only ETag/304 and a single Range, no file system, no key or header rules.',
      `Range requests ask for ${sizeLabel(RANGE_BYTES)} at byte 1000. Every round's status codes are checked (200, 304 or 206 only, no errors or timeouts), and each server's bytes are checked before timing.`,
      `Took ${Math.round((Date.now() - started) / 1000)} s; load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(' / ')} (1, 5, 15 min) at the end.`,
    ],
  });
  process.stderr.write(`wrote ${paths.md}\n`);
}

await main();
