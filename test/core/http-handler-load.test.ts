// The media handler under load: clients that stop reading give back their file and connection
// after `sendTimeout`, while 500 connections at once all get whole, correct answers in bounded
// memory. Bounded in time (a few seconds per test) and size (a few MiB of files).
import { createHash } from 'node:crypto';
import { readdirSync, readlinkSync, realpathSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createMediaHandler, DEFAULT_SEND_TIMEOUT_MS } from '../../src/core/http-handler.js';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import { listen } from '../support/http.js';
import { tempDir } from '../support/tmp.js';

/** Larger than what the kernel buffers for a client that reads nothing (loopback: a few hundred KiB). */
const BIG = 16 * 1024 * 1024;
const SEND_TIMEOUT = 500;
const onLinux = process.platform === 'linux';

/** Descriptors this process has open on `file` (Linux: /proc/self/fd). */
function openDescriptors(file: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) count++;
    } catch {
      // closed while listing
    }
  }
  return count;
}

async function waitFor(condition: () => boolean, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  return true;
}

/** A raw GET whose response is read one byte a second (onread into a 1-byte buffer, paused in between). */
function oneByteASecond(port: number, target: string): { socket: net.Socket; received: () => string } {
  let received = '';
  const socket: net.Socket = net.connect({
    port,
    host: '127.0.0.1',
    onread: {
      buffer: Buffer.alloc(1),
      callback: (bytes: number, buffer: Uint8Array): boolean => {
        received += Buffer.from(buffer.subarray(0, bytes)).toString('latin1');
        setTimeout(() => socket.resume(), 1000).unref();
        return false; // pause until then
      },
    },
  });
  socket.on('error', () => undefined); // the server may reset it
  socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  return { socket, received: () => received };
}

/** A raw GET whose response is never read. */
function neverReads(port: number, target: string): net.Socket {
  const socket = net.connect(port, '127.0.0.1');
  socket.pause();
  socket.on('error', () => undefined);
  socket.write(`GET ${target} HTTP/1.1\r\nHost: localhost\r\n\r\n`);
  return socket;
}

function failureCodeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return (err as { code?: string }).code;
  }
  return undefined;
}

/** Server-side count of responses still open, around the storage's handler. */
async function serveCounting(handler: http.RequestListener): Promise<{ server: Awaited<ReturnType<typeof listen>>; open: () => number; port: number }> {
  let open = 0;
  const server = await listen((req, res) => {
    open++;
    res.once('close', () => open--);
    handler(req, res);
  });
  return { server, open: () => open, port: Number(new URL(server.url).port) };
}

describe('media handler: slow clients', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let storage: LocalStorage;
  let file: string;
  const sockets: net.Socket[] = [];
  beforeEach(async () => {
    tmp = await tempDir('handler-slow');
    storage = new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false });
    await storage.save('videos/big.mp4', Buffer.alloc(BIG, 7), { allowEmpty: false });
    file = realpathSync(path.join(tmp.dir, 'videos', 'big.mp4'));
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await tmp.remove();
  });

  it.runIf(onLinux)('a client reading one byte a second loses its connection after sendTimeout, and its file is closed', async () => {
    const { server, open, port } = await serveCounting(storage.handler({ sendTimeout: SEND_TIMEOUT }));
    try {
      const slow = oneByteASecond(port, '/media/videos/big.mp4');
      sockets.push(slow.socket);
      // The response started and holds the file open while the client dawdles...
      expect(await waitFor(() => open() === 1 && openDescriptors(file) === 1, 2000)).toBe(true);
      const started = Date.now();
      // ...until nothing has gone out for sendTimeout: the server closes the response and the file.
      expect(await waitFor(() => open() === 0 && openDescriptors(file) === 0, SEND_TIMEOUT + 4000), 'response and file released').toBe(true);
      expect(Date.now() - started).toBeGreaterThanOrEqual(SEND_TIMEOUT - 100);
      expect(slow.received()).toMatch(/^H/); // it was being served: "HTTP/1.1 200..."
    } finally {
      await server.close();
    }
  });

  it('a download that keeps moving is not cut, however long it takes in all', async () => {
    await storage.save('videos/medium.mp4', Buffer.alloc(1024 * 1024, 3));
    const { server, port } = await serveCounting(storage.handler({ sendTimeout: 300 }));
    try {
      // 1 MiB at 64 KiB every 100 ms takes well over the timeout in all, never 300 ms idle.
      const body = await new Promise<number>((resolve, reject) => {
        http
          .get({ host: '127.0.0.1', port, path: '/media/videos/medium.mp4', agent: false }, (res) => {
            let bytes = 0;
            res.on('data', (chunk: Buffer) => {
              bytes += chunk.length;
              res.pause();
              setTimeout(() => res.resume(), 100 * (chunk.length / 65536));
            });
            res.on('end', () => resolve(bytes));
            res.on('error', reject);
          })
          .on('error', reject);
      });
      expect(body).toBe(1024 * 1024);
    } finally {
      await server.close();
    }
  });

  it('refuses a sendTimeout that is not a number of milliseconds, and defaults to a finite one', () => {
    expect(DEFAULT_SEND_TIMEOUT_MS).toBeGreaterThan(0);
    expect(Number.isFinite(DEFAULT_SEND_TIMEOUT_MS)).toBe(true);
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '100' as unknown as number]) {
      expect(
        failureCodeOf(() => createMediaHandler(storage, { basePath: '/media', sendTimeout: bad })),
        String(bad),
      ).toBe('CONFIG');
    }
  });
});

describe.each([
  ['local', true],
  ['memory', false],
] as const)('media handler under 500 connections (%s)', (backend, onDisk) => {
  const FAST = 400;
  const STALLED = 100;
  const SMALL = Array.from({ length: 20 }, (_, i) => Buffer.alloc(40 * 1024, i + 1));
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let storage: LocalStorage | MemoryStorage;
  const sockets: net.Socket[] = [];
  beforeEach(async () => {
    tmp = await tempDir('handler-load');
    storage = onDisk ? new LocalStorage({ root: tmp.dir, warnOnEphemeralDisk: false }) : new MemoryStorage();
    for (const [i, body] of SMALL.entries()) await storage.save(`people/p${i}.jpg`, Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), body]));
    await storage.save('videos/big.mp4', Buffer.alloc(BIG, 9));
  });
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await tmp.remove();
  });

  it(
    `answers ${FAST} busy connections whole and correct while ${STALLED} stalled ones are cut after sendTimeout, in bounded memory`,
    { timeout: 60_000 },
    async () => {
      const { server, open, port } = await serveCounting(storage.handler({ sendTimeout: 1000 }));
      const agent = new http.Agent({ keepAlive: true, maxSockets: FAST });
      const digests = SMALL.map((body) =>
        createHash('sha256')
          .update(Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), body]))
          .digest('hex'),
      );
      const rssBefore = process.memoryUsage().rss;
      let rssPeak = rssBefore;
      const sampler = setInterval(() => (rssPeak = Math.max(rssPeak, process.memoryUsage().rss)), 20);
      try {
        for (let i = 0; i < STALLED; i++) sockets.push(neverReads(port, '/media/videos/big.mp4'));
        expect(await waitFor(() => open() >= STALLED, 10_000), 'every stalled request is being answered').toBe(true);
        // Busy clients: each connection asks for photos in turn for a second and a half.
        const failures: string[] = [];
        let answered = 0;
        const until = Date.now() + 1500;
        const one = (i: number): Promise<void> =>
          new Promise((resolve) => {
            const k = i % SMALL.length;
            const req = http.get({ host: '127.0.0.1', port, path: `/media/people/p${k}.jpg`, agent, timeout: 20_000 }, (res) => {
              const hash = createHash('sha256');
              res.on('data', (chunk: Buffer) => hash.update(chunk));
              res.on('end', () => {
                if (res.statusCode !== 200 || res.headers['x-content-type-options'] !== 'nosniff') failures.push(`p${k}: ${res.statusCode}`);
                else if (hash.digest('hex') !== digests[k]) failures.push(`p${k}: wrong bytes`);
                else answered++;
                resolve();
              });
              res.on('error', (err) => (failures.push(`p${k}: ${err.message}`), resolve()));
            });
            req.on('timeout', () => req.destroy(new Error('no answer within 20 s')));
            req.on('error', (err) => (failures.push(`p${k}: ${err.message}`), resolve()));
          });
        await Promise.all(
          Array.from({ length: FAST }, async (_, c) => {
            for (let n = 0; n === 0 || Date.now() < until; n++) await one(c + n);
          }),
        );
        expect(failures).toEqual([]);
        expect(answered).toBeGreaterThanOrEqual(FAST);
        // Memory stays bounded: no body is held whole per connection (16 MiB × 100 stalled would be 1.6 GB).
        expect((rssPeak - rssBefore) / 2 ** 20).toBeLessThan(300);
        // The stalled ones send nothing for sendTimeout: their responses (and files) are released.
        expect(await waitFor(() => open() === 0, 10_000), `${open()} responses still open`).toBe(true);
        if (onDisk && onLinux) expect(openDescriptors(realpathSync(path.join(tmp.dir, 'videos', 'big.mp4')))).toBe(0);
      } finally {
        clearInterval(sampler);
        agent.destroy();
        await server.close();
      }
    },
  );
});
