/**
 * Only the retry layer retries: an S3Client that S3Storage builds makes one attempt per call, so
 * under withRetry a failing request is sent exactly maxAttempts times (the SDK's own three
 * attempts would multiply them). And `timeout` bounds a request that gets no answer.
 */
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { S3Storage } from '../../src/s3/index.js';
import { withRetry } from '../../src/layers/index.js';
import { startFaultProxy, type FaultProxy } from '../support/fault-proxy.js';

const credentials = { accessKeyId: 'testaccesskey', secretAccessKey: 'testsecretkey1234567890' };

describe('S3Storage: attempts and timeout', () => {
  let silent: net.Server;
  let silentUrl: string;
  let proxy: FaultProxy;
  const sockets = new Set<net.Socket>();

  beforeAll(async () => {
    // Accepts connections and never answers: a hung server.
    silent = net.createServer((socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    silentUrl = `http://127.0.0.1:${(silent.address() as net.AddressInfo).port}`;
    proxy = await startFaultProxy({ host: '127.0.0.1', port: (silent.address() as net.AddressInfo).port });
  });

  afterAll(async () => {
    await proxy?.close();
    for (const socket of sockets) socket.destroy();
    await new Promise((resolve) => silent?.close(resolve));
  });

  it('under withRetry({ maxAttempts: 3 }) a request answered 503 every time is sent 3 times, not 9', async () => {
    await proxy.setFault({ kind: 'http503' });
    const before = proxy.stats.connections;
    const storage = withRetry(new S3Storage({ bucket: 'attempts', endpoint: proxy.url, region: 'us-east-1', credentials }), { maxAttempts: 3, baseDelayMs: 1 });
    await expect(storage.stat('a.txt')).rejects.toMatchObject({ code: 'UNAVAILABLE' });
    // The proxy answers one request per connection and closes it: one connection per attempt.
    expect(proxy.stats.connections - before).toBe(3);
    await storage.close();
  });

  it('timeout: a request that gets no answer fails as UNAVAILABLE after about that long', async () => {
    const storage = new S3Storage({ bucket: 'attempts', endpoint: silentUrl, region: 'us-east-1', credentials, timeout: 300 });
    const started = Date.now();
    await expect(storage.stat('a.txt')).rejects.toMatchObject({ code: 'UNAVAILABLE', backend: 's3' });
    expect(Date.now() - started).toBeLessThan(5000);
    await storage.close();
  });

  it('timeout must be a positive number of milliseconds', () => {
    for (const timeout of [0, -1, Number.NaN, '500' as unknown as number]) {
      expect(() => new S3Storage({ bucket: 'b', timeout })).toThrow(
        expect.objectContaining({ code: 'CONFIG', message: expect.stringMatching(/^s3: timeout must be a whole number of milliseconds of at least 1/) }),
      );
    }
  });

  it('close() destroys a client it made, and leaves one passed in open', async () => {
    const own = new S3Storage({ bucket: 'b', endpoint: silentUrl, credentials });
    let destroyed = 0;
    const original = own.client.destroy.bind(own.client);
    own.client.destroy = () => {
      destroyed++;
      original();
    };
    await own.close();
    expect(destroyed).toBe(1);
    const shared = new S3Storage({ bucket: 'b', client: own.client });
    await shared.close();
    expect(destroyed).toBe(1);
  });
});
