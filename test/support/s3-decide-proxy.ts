import http from 'node:http';
import { listen } from './http.js';

export type ProxyAction = 'pass' | 'fail' | 'corrupt';

export interface SeenRequest {
  method: string;
  url: string;
  action: ProxyAction;
  headers: http.IncomingHttpHeaders;
}

/**
 * An HTTP proxy in front of a real S3 server that can fail or corrupt chosen requests. Requests
 * are forwarded with their headers unchanged (Host included), so SigV4 signatures made for the
 * proxy's address still verify at the server.
 */
export async function startFaultProxy(
  target: string,
  decide: (method: string, url: string) => ProxyAction,
): Promise<{ url: string; seen: SeenRequest[]; close: () => Promise<void> }> {
  const upstream = new URL(target);
  const seen: SeenRequest[] = [];
  const server = await listen(async (req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    const action = decide(method, url);
    seen.push({ method, url, action, headers: req.headers });
    const chunks: Buffer[] = [];
    try {
      for await (const chunk of req) chunks.push(chunk as Buffer);
    } catch {
      // The client gave up on this request (an aborted upload): nothing to forward.
      res.destroy();
      return;
    }
    const body = Buffer.concat(chunks);
    if (action === 'fail') {
      res.writeHead(500, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected by the test proxy</Message></Error>');
      return;
    }
    if (action === 'corrupt' && body.length > 0) body[Math.floor(body.length / 2)]! ^= 0xff;
    const forward = http.request({ host: upstream.hostname, port: upstream.port, method, path: url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    forward.on('error', () => res.destroy());
    forward.end(body);
  });
  return { url: server.url, seen, close: server.close };
}
