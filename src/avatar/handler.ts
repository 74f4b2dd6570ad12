import type { IncomingMessage, ServerResponse } from 'node:http';
import { AVATAR_FALLBACK_SCRIPT } from './img.js';
import { initialsAvatarSvg } from './initials.js';

/** Options of {@link createAvatarHandler}: where it serves the initials SVG and fallback script, and their Cache-Control. */
export interface AvatarHandlerOptions {
  /** URL path to serve under. Default `/avatars`: `/avatars/initials.svg?name=&id=&size=&shape=` and `/avatars/fallback.js`. */
  basePath?: string;
  /** Cache-Control of both responses. Default one day: the output depends only on the URL. */
  cacheControl?: string;
}

// The SVG has no script, and this policy makes sure any SVG served here could not run one.
const SVG_CSP = "default-src 'none'; sandbox";

/**
 * Serves the built-in default avatar and the strict-CSP fallback script, as a Node
 * `(req, res, next?)` handler (plain http, Express, Connect).
 */
export function createAvatarHandler(options: AvatarHandlerOptions = {}): (req: IncomingMessage, res: ServerResponse, next?: (err?: unknown) => void) => void {
  const base = `/${(options.basePath ?? '/avatars').replace(/^\/+|\/+$/g, '')}`.replace(/^\/$/, '');
  const cacheControl = options.cacheControl ?? 'public, max-age=86400';
  return (req, res, next) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    const route = url.pathname === `${base}/initials.svg` ? 'svg' : url.pathname === `${base}/fallback.js` ? 'script' : undefined;
    if (!route || (req.method !== 'GET' && req.method !== 'HEAD')) {
      if (next) return next();
      res.statusCode = 404;
      res.end('Not found');
      return;
    }
    let body: string;
    if (route === 'svg') {
      const q = url.searchParams;
      const shape = q.get('shape');
      body = initialsAvatarSvg(
        { name: q.get('name'), id: q.get('id') },
        { size: q.has('size') ? Number(q.get('size')) : undefined, shape: shape === 'square' || shape === 'circle' ? shape : undefined },
      );
      res.setHeader('Content-Type', 'image/svg+xml; charset=utf-8');
      res.setHeader('Content-Security-Policy', SVG_CSP);
    } else {
      body = AVATAR_FALLBACK_SCRIPT;
      res.setHeader('Content-Type', 'text/javascript; charset=utf-8');
    }
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('Cache-Control', cacheControl);
    res.setHeader('Content-Length', Buffer.byteLength(body));
    res.end(req.method === 'HEAD' ? undefined : body);
  };
}
