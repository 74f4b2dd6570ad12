/**
 * One HTTP server for bench/serve.bench.ts, alone in its process so that its CPU time and memory
 * are its own: `serve-child.ts <kind> <root>` serves the files under `<root>` at `/media/...`
 * and talks to the parent over IPC (`{ port }` once listening; `usage` → CPU and peak RSS).
 *
 * Kinds: `local` (LocalStorage.handler()), `memory` (MemoryStorage.handler() over the same
 * files), `serve-static` (what express.static uses, on the same folder), `plain` (node:http
 * answering from buffers in memory: the floor, with no file system and no checks).
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import serveStatic from 'serve-static';
import { LocalStorage } from '../src/local/index.js';
import { MemoryStorage } from '../src/memory/index.js';

type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

async function filesUnder(root: string): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for (const entry of await readdir(root, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const full = path.join(entry.parentPath, entry.name);
    out.set(path.relative(root, full).split(path.sep).join('/'), await readFile(full));
  }
  return out;
}

function notFound(res: http.ServerResponse): void {
  res.statusCode = 404;
  res.end('Not found');
}

async function handlerFor(kind: string, root: string): Promise<Handler> {
  switch (kind) {
    case 'local': {
      const handler = new LocalStorage({ root, publicBaseUrl: '/media', warnOnEphemeralDisk: false }).handler();
      return (req, res) => handler(req, res);
    }
    case 'memory': {
      const storage = new MemoryStorage({ publicBaseUrl: '/media' });
      for (const [key, bytes] of await filesUnder(root)) await storage.save(key, bytes);
      const handler = storage.handler();
      return (req, res) => handler(req, res);
    }
    case 'serve-static': {
      const serve = serveStatic(root, { index: false });
      return (req, res) => {
        if (!req.url?.startsWith('/media/')) return notFound(res);
        req.url = req.url.slice('/media'.length);
        serve(req, res, () => notFound(res));
      };
    }
    case 'plain': {
      // The floor: a Map lookup and res.end(buffer), with just enough HTTP for the same cases.
      const files = new Map<string, { bytes: Buffer; etag: string }>();
      for (const [key, bytes] of await filesUnder(root)) {
        files.set(`/media/${key}`, { bytes, etag: `"${createHash('md5').update(bytes).digest('hex')}"` });
      }
      return (req, res) => {
        const file = files.get(req.url ?? '');
        if (!file) return notFound(res);
        res.setHeader('Content-Type', 'image/jpeg');
        res.setHeader('ETag', file.etag);
        if (req.headers['if-none-match'] === file.etag) {
          res.statusCode = 304;
          return res.end();
        }
        const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
        if (range) {
          const start = Number(range[1]);
          const end = Math.min(Number(range[2]), file.bytes.length - 1);
          res.statusCode = 206;
          res.setHeader('Content-Range', `bytes ${start}-${end}/${file.bytes.length}`);
          return res.end(file.bytes.subarray(start, end + 1));
        }
        res.end(file.bytes);
      };
    }
    default:
      throw new Error(`unknown server kind ${kind}`);
  }
}

async function main(): Promise<void> {
  const [kind, root] = process.argv.slice(2) as [string, string];
  const handler = await handlerFor(kind, root);
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  let peakRss = process.memoryUsage().rss;
  setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 20).unref();
  process.on('message', (message) => {
    if (message === 'usage') {
      const cpu = process.cpuUsage();
      process.send!({ cpuMicros: cpu.user + cpu.system, peakRssBytes: peakRss });
      peakRss = process.memoryUsage().rss;
    }
    if (message === 'exit') server.close(() => process.exit(0));
  });
  const address = server.address();
  process.send!({ port: typeof address === 'object' && address ? address.port : 0 });
}

await main();
