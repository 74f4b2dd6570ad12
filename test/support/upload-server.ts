import http from 'node:http';
import type net from 'node:net';

/**
 * A tiny upload sink for proxy tests: answers each request with the number of body bytes it
 * received, and records per connection the raw bytes that arrived and which requests completed.
 */
export async function startUploadServer(): Promise<{
  url: string;
  port: number;
  /** Raw bytes received, one entry per connection. */
  rawBytes: number[];
  /** Body sizes of requests that arrived whole. */
  completed: number[];
  close: () => Promise<void>;
}> {
  const rawBytes: number[] = [];
  const completed: number[] = [];
  const server = http.createServer((req, res) => {
    let size = 0;
    req.on('data', (c: Buffer) => (size += c.length));
    req.on('end', () => {
      completed.push(size);
      res.end(String(size));
    });
  });
  server.on('connection', (socket) => {
    const i = rawBytes.push(0) - 1;
    socket.on('data', (c: Buffer) => (rawBytes[i]! += c.length));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    rawBytes,
    completed,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
