import { randomBytes } from 'node:crypto';
import http from 'node:http';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/local/index.js';
import { startFaultProxy, type FaultProxy } from './fault-proxy.js';
import { listen } from './http.js';
import { tempDir } from './tmp.js';
import { startUploadServer } from './upload-server.js';

/** Sends raw bytes through the proxy and collects what comes back until the connection ends or fails. */
function rawExchange(port: number, request: Buffer | string): Promise<{ received: Buffer; error?: NodeJS.ErrnoException }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1', () => socket.write(request));
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', (error: NodeJS.ErrnoException) => resolve({ received: Buffer.concat(chunks), error }));
    socket.on('close', () => resolve({ received: Buffer.concat(chunks) }));
  });
}

describe('fault proxy in front of LocalStorage’s HTTP handler', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let storage: LocalStorage;
  let server: Awaited<ReturnType<typeof listen>>;
  let proxy: FaultProxy;
  const big = randomBytes(1024 * 1024);

  beforeAll(async () => {
    tmp = await tempDir('fault-proxy');
    server = await listen((req, res) => storage.handler()(req, res));
    storage = new LocalStorage({ root: tmp.dir, baseUrl: '/media', warnOnEphemeralDisk: false });
    await storage.save('big.bin', big);
    await storage.save('small.txt', 'through the proxy');
    proxy = await startFaultProxy(server.url);
  });
  afterAll(async () => {
    await proxy.close();
    await server.close();
    await tmp.remove();
  });

  it('passes requests through untouched by default', async () => {
    await proxy.setFault({ kind: 'pass' });
    const res = await fetch(`${proxy.url}/media/big.bin`);
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(big)).toBe(true);
  });

  it('resets a download after exactly N bytes of the response', async () => {
    await proxy.setFault({ kind: 'reset', direction: 'downstream', afterBytes: 5000 }, { connections: 1 });
    const before = proxy.stats.bytesDownstream;
    const { received, error } = await rawExchange(proxy.port, 'GET /media/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    expect(proxy.stats.bytesDownstream - before).toBe(5000);
    // The client normally reads all 5,000 bytes before the reset lands; on a starved event loop
    // the RST can overtake them (the kernel drops unread bytes), so "at most" is what is certain.
    expect(received.length).toBeLessThanOrEqual(5000);
    expect(error?.code).toBe('ECONNRESET');
    if (received.length > 0) expect(received.toString('latin1')).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
  });

  it('makes fetch fail mid-body on a downstream reset, then passes the next connection', async () => {
    await proxy.setFault({ kind: 'reset', direction: 'downstream', afterBytes: 100_000 }, { connections: 1 });
    // The head normally gets through and the body breaks; either way the download fails.
    await expect(fetch(`${proxy.url}/media/big.bin`).then((res) => res.arrayBuffer())).rejects.toThrow();
    const again = await fetch(`${proxy.url}/media/small.txt`);
    expect(await again.text()).toBe('through the proxy');
  });

  it('answers HTTP 503 SlowDown without contacting the server', async () => {
    await proxy.setFault({ kind: 'http503', retryAfterSeconds: 7 }, { connections: 1 });
    const upstreamBefore = proxy.stats.upstreamConnections;
    const res = await fetch(`${proxy.url}/media/small.txt`);
    expect(res.status).toBe(503);
    expect(res.headers.get('retry-after')).toBe('7');
    expect(await res.text()).toContain('<Code>SlowDown</Code>');
    expect(proxy.stats.upstreamConnections).toBe(upstreamBefore);
  });

  it('stalls a download after N bytes: the client waits until it gives up', async () => {
    await proxy.setFault({ kind: 'stall', direction: 'downstream', afterBytes: 3000 }, { connections: 1 });
    const before = proxy.stats.bytesDownstream;
    const got = fetch(`${proxy.url}/media/big.bin`, { signal: AbortSignal.timeout(500) }).then((res) => res.arrayBuffer());
    await expect(got).rejects.toMatchObject({ name: 'TimeoutError' });
    expect(proxy.stats.bytesDownstream - before).toBe(3000);
  });
});

describe('fault proxy in front of an upload server', () => {
  let proxy: FaultProxy;
  let sink: Awaited<ReturnType<typeof startUploadServer>>;
  let rawBytes: number[];
  let completed: number[];

  beforeAll(async () => {
    sink = await startUploadServer();
    ({ rawBytes, completed } = sink);
    proxy = await startFaultProxy({ host: '127.0.0.1', port: sink.port });
  });
  afterAll(async () => {
    await proxy.close();
    await sink.close();
  });

  const upload = (size: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.request(
        { host: '127.0.0.1', port: proxy.port, agent: false, method: 'PUT', path: '/upload', headers: { 'content-length': size } },
        (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c));
          res.on('end', () => resolve(Number(text)));
        },
      );
      req.on('error', reject);
      req.end(Buffer.alloc(size, 1));
    });

  it('passes an upload through', async () => {
    await proxy.setFault({ kind: 'pass' });
    await expect(upload(200_000)).resolves.toBe(200_000);
  });

  it('resets an upload after exactly N bytes: the server sees N bytes and no complete request', async () => {
    await proxy.setFault({ kind: 'reset', direction: 'upstream', afterBytes: 65_536 }, { connections: 1 });
    const done = completed.length;
    const seen = rawBytes.length;
    const sentBefore = proxy.stats.bytesUpstream;
    const err = (await upload(1_000_000).catch((e: unknown) => e)) as NodeJS.ErrnoException;
    expect(err).toBeInstanceOf(Error);
    expect(['ECONNRESET', 'EPIPE']).toContain(err.code);
    await new Promise((r) => setTimeout(r, 50));
    expect(proxy.stats.bytesUpstream - sentBefore).toBe(65_536);
    expect(rawBytes.length).toBe(seen + 1);
    // All 65,536 unless the RST overtook bytes the server had not read yet.
    expect(rawBytes[seen]).toBeLessThanOrEqual(65_536);
    expect(completed.length).toBe(done);
  });

  it('applies a fault to the next N connections only', async () => {
    await proxy.setFault({ kind: 'http503' }, { connections: 2 });
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${proxy.url}/x`, { method: 'PUT', body: 'abc' });
      statuses.push(res.status);
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([503, 503, 200]);
    await proxy.waitForFaults(proxy.stats.faulted);
  });
});
