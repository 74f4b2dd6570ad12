/**
 * A TCP proxy on loopback that sits between a client (an SDK) and a server (the S3 server, the
 * Cloudinary/B2 fakes, LocalStorage's handler) and breaks connections on purpose:
 *
 * - `reset`: forwards exactly `afterBytes` bytes in one direction, then resets both sides (RST,
 *   a moment later; the receiver gets at most those bytes, then ECONNRESET or an early end);
 * - `stall`: forwards exactly `afterBytes` bytes in one direction, then forwards nothing more in
 *   that direction while keeping the connection open (a hung peer);
 * - `http503`: answers the first request on the connection with an HTTP 503 (S3's SlowDown by
 *   default) without contacting the server, then closes.
 *
 * "upstream" is client → server (a request and its upload body); "downstream" is server → client
 * (a response and a download). A fault applies to new connections, to the next `connections`
 * of them or to all until changed.
 *
 * To break one particular request of a keep-alive client (the completion of a multipart upload,
 * the third part), use the request-aware {@link startHttpFaultProxy} in ./http-fault-proxy.ts.
 */
import net from 'node:net';

export type Direction = 'upstream' | 'downstream';

export type Fault =
  | { kind: 'pass' }
  | { kind: 'reset'; direction: Direction; afterBytes: number }
  | { kind: 'stall'; direction: Direction; afterBytes: number }
  | { kind: 'http503'; retryAfterSeconds?: number; body?: string; contentType?: string };

export interface FaultProxyStats {
  /** Connections accepted. */
  connections: number;
  /** Connections a fault (other than `pass`) was applied to. */
  faulted: number;
  /** Connections opened to the server. */
  upstreamConnections: number;
  /** Bytes forwarded client → server, and server → client. */
  bytesUpstream: number;
  bytesDownstream: number;
}

export interface FaultProxy {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  readonly host: string;
  readonly port: number;
  readonly stats: Readonly<FaultProxyStats>;
  /**
   * Applies `fault` to the next `connections` new connections (default: all, until changed).
   * Closes the connections open now, so that pooled keep-alive clients reconnect and meet it.
   */
  setFault(fault: Fault, options?: { connections?: number }): Promise<void>;
  /** Resolves once `n` connections have hit a fault; for tests that wait for the break. */
  waitForFaults(n: number): Promise<void>;
  /** Closes the listener and every open connection. */
  close(): Promise<void>;
}

export const RESET_DELAY_MS = 20;

export const S3_SLOWDOWN = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

/** Starts a proxy to `target` (a URL or host and port) on an ephemeral loopback port. */
export async function startFaultProxy(target: string | { host: string; port: number }): Promise<FaultProxy> {
  const to =
    typeof target === 'string'
      ? (() => {
          const u = new URL(target);
          return { host: u.hostname, port: Number(u.port || (u.protocol === 'https:' ? 443 : 80)) };
        })()
      : target;

  let current: Fault = { kind: 'pass' };
  let remaining = Number.POSITIVE_INFINITY;
  const stats: FaultProxyStats = { connections: 0, faulted: 0, upstreamConnections: 0, bytesUpstream: 0, bytesDownstream: 0 };
  const sockets = new Set<net.Socket>();
  const faultWaiters: Array<{ n: number; resolve: () => void }> = [];

  const track = (socket: net.Socket): net.Socket => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // Resets are the point of this proxy: they must not crash the test process.
    socket.on('error', () => undefined);
    return socket;
  };

  const nextFault = (): Fault => {
    if (remaining <= 0) return { kind: 'pass' };
    remaining--;
    const fault = current;
    if (remaining <= 0) current = { kind: 'pass' };
    return fault;
  };

  const noteFault = (): void => {
    stats.faulted++;
    for (const w of faultWaiters.splice(0)) {
      if (stats.faulted >= w.n) w.resolve();
      else faultWaiters.push(w);
    }
  };

  const resetBoth = (a: net.Socket, b: net.Socket): void => {
    for (const s of [a, b]) {
      if (!s.destroyed) s.resetAndDestroy();
    }
  };

  /** Forwards `from` → `to`, counting bytes; applies a byte-limited fault for this direction. */
  const forward = (from: net.Socket, toSocket: net.Socket, direction: Direction, fault: Fault): void => {
    let sent = 0;
    const limited = (fault.kind === 'reset' || fault.kind === 'stall') && fault.direction === direction ? fault : undefined;
    let stopped = false;
    from.on('data', (chunk: Buffer) => {
      if (stopped) return;
      let out = chunk;
      if (limited && sent + chunk.length >= limited.afterBytes) {
        out = chunk.subarray(0, limited.afterBytes - sent);
        stopped = true;
      }
      sent += out.length;
      if (direction === 'upstream') stats.bytesUpstream += out.length;
      else stats.bytesDownstream += out.length;
      const afterWrite = (): void => {
        // stall: keep reading (and dropping) so the sender is not blocked by backpressure
        // either; the connection stays open until someone closes it.
        // The reset is a moment late so that the bytes reach the reader first: a RST makes the
        // kernel drop whatever the receiver has not read yet.
        if (stopped && limited?.kind === 'reset') setTimeout(() => resetBoth(from, toSocket), RESET_DELAY_MS);
      };
      // A reset waits until the forwarded bytes have been handed to the kernel.
      if (out.length > 0 && !toSocket.destroyed) toSocket.write(out, afterWrite);
      else afterWrite();
    });
    from.on('end', () => {
      if (!stopped && !toSocket.destroyed) toSocket.end();
    });
    from.on('close', () => {
      if (!stopped && !toSocket.destroyed) toSocket.destroy();
    });
  };

  const answer503 = (client: net.Socket, fault: Extract<Fault, { kind: 'http503' }>): void => {
    let head = '';
    let answered = false;
    client.on('data', (chunk: Buffer) => {
      if (answered) return;
      head += chunk.toString('latin1');
      if (!head.includes('\r\n\r\n')) return;
      answered = true;
      const body = Buffer.from(fault.body ?? S3_SLOWDOWN, 'utf8');
      const lines = [
        'HTTP/1.1 503 Service Unavailable',
        `Content-Type: ${fault.contentType ?? 'application/xml'}`,
        `Content-Length: ${body.length}`,
        `Retry-After: ${fault.retryAfterSeconds ?? 1}`,
        'Connection: close',
      ];
      client.write(`${lines.join('\r\n')}\r\n\r\n`);
      client.end(body);
    });
  };

  const server = net.createServer((clientSocket) => {
    const client = track(clientSocket);
    stats.connections++;
    const fault = nextFault();
    if (fault.kind !== 'pass') noteFault();
    if (fault.kind === 'http503') {
      answer503(client, fault);
      return;
    }
    client.pause();
    stats.upstreamConnections++;
    const upstream = track(net.connect(to.port, to.host, () => client.resume()));
    upstream.once('error', () => {
      if (!client.destroyed) client.resetAndDestroy();
    });
    forward(client, upstream, 'upstream', fault);
    forward(upstream, client, 'downstream', fault);
  });

  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    host: '127.0.0.1',
    port,
    stats,
    async setFault(fault, options = {}) {
      if ((fault.kind === 'reset' || fault.kind === 'stall') && !(Number.isInteger(fault.afterBytes) && fault.afterBytes >= 0)) {
        throw new Error('afterBytes must be a whole number of bytes');
      }
      current = fault;
      remaining = options.connections ?? Number.POSITIVE_INFINITY;
      // Clients pool keep-alive connections; closing them makes the next request open a new one,
      // which is where the fault applies.
      const open = [...sockets];
      await Promise.all(open.map((s) => new Promise((resolve) => (s.destroyed ? resolve(undefined) : (s.once('close', resolve), s.destroy())))));
      await new Promise((resolve) => setTimeout(resolve, 10));
    },
    waitForFaults(n) {
      if (stats.faulted >= n) return Promise.resolve();
      return new Promise((resolve) => faultWaiters.push({ n, resolve }));
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
