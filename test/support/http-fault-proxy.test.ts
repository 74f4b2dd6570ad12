import { randomBytes } from 'node:crypto';
import http from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/local/index.js';
import { listen } from './http.js';
import { startHttpFaultProxy, type HttpFaultProxy } from './http-fault-proxy.js';
import { tempDir } from './tmp.js';
import { startUploadServer } from './upload-server.js';

describe('request-aware fault proxy in front of LocalStorage’s handler (keep-alive client)', () => {
  let tmp: Awaited<ReturnType<typeof tempDir>>;
  let storage: LocalStorage;
  let server: Awaited<ReturnType<typeof listen>>;
  let proxy: HttpFaultProxy;
  const served: string[] = [];
  const big = randomBytes(2 * 1024 * 1024);

  beforeAll(async () => {
    tmp = await tempDir('http-fault-proxy');
    server = await listen((req, res) => {
      served.push(req.url ?? '');
      storage.handler()(req, res);
    });
    storage = new LocalStorage({ root: tmp.dir, baseUrl: '/media', warnOnEphemeralDisk: false });
    await storage.save('big.bin', big);
    await storage.save('a.txt', 'alpha');
    await storage.save('target.txt', 'the target');
    proxy = await startHttpFaultProxy(server.url);
  });
  afterAll(async () => {
    await proxy.close();
    await server.close();
    await tmp.remove();
  });

  it('forwards requests untouched, whatever connection they share, and records them', async () => {
    proxy.setFault({ kind: 'pass' });
    const before = proxy.requests.length;
    for (let i = 0; i < 3; i++) expect(await (await fetch(`${proxy.url}/media/a.txt`)).text()).toBe('alpha');
    const res = await fetch(`${proxy.url}/media/big.bin`, { headers: { range: 'bytes=10-19' } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(big.subarray(10, 20))).toBe(true);
    expect(proxy.requests.slice(before).map((r) => [r.method, r.url, r.fault])).toEqual([
      ['GET', '/media/a.txt', 'pass'],
      ['GET', '/media/a.txt', 'pass'],
      ['GET', '/media/a.txt', 'pass'],
      ['GET', '/media/big.bin', 'pass'],
    ]);
  });

  it('answers 503 to the one request that matches, and passes the others on the same client', async () => {
    proxy.setFault({ kind: 'http503', retryAfterSeconds: 3 }, { requests: 1, match: (r) => r.url.endsWith('/target.txt') });
    const servedBefore = served.length;
    const statuses: number[] = [];
    for (const name of ['a.txt', 'target.txt', 'a.txt', 'target.txt']) {
      const res = await fetch(`${proxy.url}/media/${name}`);
      statuses.push(res.status);
      if (res.status === 503) expect(res.headers.get('retry-after')).toBe('3');
      await res.arrayBuffer();
    }
    expect(statuses).toEqual([200, 503, 200, 200]);
    // The faulted request never reached the server.
    expect(served.slice(servedBefore)).toEqual(['/media/a.txt', '/media/a.txt', '/media/target.txt']);
  });

  it('resets the response of a matching request mid-body; the next request works', async () => {
    proxy.setFault({ kind: 'reset', direction: 'downstream', afterBytes: 300_000 }, { requests: 1, match: (r) => r.url.includes('big.bin') });
    await expect(fetch(`${proxy.url}/media/big.bin`).then((r) => r.arrayBuffer())).rejects.toThrow();
    const again = await fetch(`${proxy.url}/media/big.bin`);
    expect(Buffer.from(await again.arrayBuffer()).equals(big)).toBe(true);
  });

  it('stalls the response of a matching request until the client gives up', async () => {
    proxy.setFault({ kind: 'stall', direction: 'downstream', afterBytes: 1000 }, { requests: 1 });
    const got = fetch(`${proxy.url}/media/big.bin`, { signal: AbortSignal.timeout(400) }).then((r) => r.arrayBuffer());
    await expect(got).rejects.toMatchObject({ name: 'TimeoutError' });
  });
});

describe('request-aware fault proxy in front of an upload server', () => {
  let sink: Awaited<ReturnType<typeof startUploadServer>>;
  let proxy: HttpFaultProxy;
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });

  beforeAll(async () => {
    sink = await startUploadServer();
    proxy = await startHttpFaultProxy(sink.url);
  });
  afterAll(async () => {
    agent.destroy();
    await proxy.close();
    await sink.close();
  });

  /** PUTs `size` bytes to `path` over one pooled keep-alive connection; resolves with the server's count. */
  const put = (path: string, size: number): Promise<number> =>
    new Promise((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.port, agent, method: 'PUT', path, headers: { 'content-length': size } }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c));
        res.on('end', () => (res.statusCode === 200 ? resolve(Number(text)) : reject(new Error(`status ${res.statusCode}`))));
      });
      req.on('error', reject);
      req.end(Buffer.alloc(size, 7));
    });

  it('resets the third "part" of an upload after N body bytes; parts before and after arrive whole', async () => {
    proxy.setFault({ kind: 'reset', direction: 'upstream', afterBytes: 70_000 }, { requests: 1, match: (r) => r.url.includes('partNumber=3') });
    const outcomes: Array<number | string> = [];
    for (let part = 1; part <= 4; part++) {
      outcomes.push(await put(`/bucket/key?uploadId=u1&partNumber=${part}`, 200_000).catch((e: NodeJS.ErrnoException) => e.code ?? e.message));
    }
    expect(outcomes[0]).toBe(200_000);
    expect(outcomes[1]).toBe(200_000);
    expect(['ECONNRESET', 'EPIPE', 'socket hang up']).toContain(outcomes[2]);
    expect(outcomes[3]).toBe(200_000);
    // The server saw parts 1, 2 and 4 whole, and never a whole part 3.
    expect(sink.completed.filter((n) => n === 200_000)).toHaveLength(3);
    expect(sink.completed.every((n) => n === 200_000)).toBe(true);
    expect(proxy.requests.filter((r) => r.fault === 'reset').map((r) => r.url)).toEqual(['/bucket/key?uploadId=u1&partNumber=3']);
  });

  it('answers 503 SlowDown to the completion request only', async () => {
    proxy.setFault({ kind: 'http503' }, { requests: 1, match: (r) => r.method === 'POST' && r.url.includes('uploadId=') });
    const post = await fetch(`${proxy.url}/bucket/key?uploadId=u1`, { method: 'POST', body: '<CompleteMultipartUpload/>' });
    expect(post.status).toBe(503);
    expect(await post.text()).toContain('<Code>SlowDown</Code>');
    const again = await fetch(`${proxy.url}/bucket/key?uploadId=u1`, { method: 'POST', body: '<CompleteMultipartUpload/>' });
    expect(again.status).toBe(200);
    expect(await again.text()).toBe(String('<CompleteMultipartUpload/>'.length));
  });
});

describe('request-aware fault proxy: faults decided per request', () => {
  let echo: Awaited<ReturnType<typeof listen>>;
  let proxy: HttpFaultProxy;

  beforeAll(async () => {
    // Answers with the bytes it received, so a test sees exactly what the proxy forwarded.
    echo = await listen(async (req, res) => {
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      res.end(Buffer.concat(chunks));
    });
    proxy = await startHttpFaultProxy(echo.url);
  });
  afterAll(async () => {
    await proxy.close();
    await echo.close();
  });

  it('a decider picks each request’s fault: an HTTP 500, one inverted byte in the middle of the body, or none', async () => {
    proxy.setFault((r) => (r.url.endsWith('/fail') ? { kind: 'httpError', status: 500 } : r.url.endsWith('/corrupt') ? { kind: 'corrupt' } : { kind: 'pass' }));
    const body = randomBytes(100_001);
    const failed = await fetch(`${proxy.url}/x/fail`, { method: 'PUT', body });
    expect(failed.status).toBe(500);
    expect(await failed.text()).toContain('<Code>InternalError</Code>');
    const corrupted = Buffer.from(await (await fetch(`${proxy.url}/x/corrupt`, { method: 'PUT', body })).arrayBuffer());
    expect(corrupted).toHaveLength(body.length);
    const differing = [...corrupted.keys()].filter((i) => corrupted[i] !== body[i]);
    expect(differing).toEqual([50_000]);
    expect(corrupted[50_000]).toBe(body[50_000]! ^ 0xff);
    const passed = Buffer.from(await (await fetch(`${proxy.url}/x/pass`, { method: 'PUT', body })).arrayBuffer());
    expect(passed.equals(body)).toBe(true);
    expect(proxy.requests.slice(-3).map((r) => [r.url, r.fault, r.broke ?? false])).toEqual([
      ['/x/fail', 'httpError', true],
      ['/x/corrupt', 'corrupt', true],
      ['/x/pass', 'pass', false],
    ]);
  });
});
