// Uploaded content never runs on the app's origin: a page with the strict CSP docs/avatars.md
// recommends (`script-src 'self'`, plus 'wasm-unsafe-eval' so WebAssembly is judged by its
// Content-Type alone), on the same origin as the media handlers, includes every kind
// of upload as a script, a module, a stylesheet, an iframe and an object, from the local and the
// memory handler, in a real Chromium. Every payload reports itself (a global flag and an image
// beacon to this server) if it ever runs; a stylesheet would colour its probe.
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BrowserContext } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalStorage } from '../../src/local/index.js';
import { MemoryStorage } from '../../src/memory/index.js';
import type { MediaRequestHandler } from '../../src/core/http-handler.js';
import type { MediaStorage } from '../../src/core/types.js';
import { haveBrowser, launchChromium, reportMissingBrowser } from '../support/chromium.js';
import { listen } from '../support/http.js';
import { makePng } from '../support/png.js';
import { tempDir } from '../support/tmp.js';

const SUITE = "uploads in Chromium on a script-src 'self' page";
const PAGE_CSP = "script-src 'self' 'wasm-unsafe-eval'";
const WASM_MODULE = Buffer.from([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
reportMissingBrowser(SUITE);

/** A script that reports `label` wherever it runs: a flag in the top page and a beacon. */
const script = (label: string): string =>
  `(function(){var n=${JSON.stringify(label)};try{(window.top.__pwned=window.top.__pwned||[]).push(n)}catch(e){}new Image().src='/ping?'+encodeURIComponent(n)})();`;

interface Upload {
  name: string;
  body: (label: string, probe: string) => string | Buffer;
  contentType?: string;
}

// Every kind a browser could run or apply, under honest and lying names and explicit types.
const UPLOADS: Upload[] = [
  { name: 'script.js', body: script },
  { name: 'module.mjs', body: script },
  { name: 'js-as.jpg', body: script, contentType: 'text/javascript' },
  { name: 'ecmascript.png', body: script, contentType: 'text/ecmascript' },
  { name: 'x-javascript.gif', body: script, contentType: 'application/x-javascript' },
  { name: 'jscript.webp', body: script, contentType: 'text/jscript' },
  { name: 'js-with-params.jpg', body: script, contentType: 'Text/JavaScript; charset=utf-8' },
  { name: 'js-as.txt', body: script },
  {
    name: 'page.html',
    body: (l) => `<!doctype html><html><body><script>${script(l)}</script><img src=x onerror="${script(l).replace(/"/g, '&quot;')}"></body></html>`,
  },
  { name: 'comment.jpg', body: (l) => `<!-- x --><html><body><script>${script(l)}</script></body></html>` },
  { name: 'html-as.png', body: (l) => `<html><script>${script(l)}</script></html>`, contentType: 'image/png' },
  {
    name: 'drawing.svg',
    body: (l) => `<svg xmlns="http://www.w3.org/2000/svg" onload="${script(l).replace(/"/g, '&quot;')}"><script>${script(l)}</script></svg>`,
  },
  { name: 'page.xhtml', body: (l) => `<?xml version="1.0"?><html xmlns="http://www.w3.org/1999/xhtml"><body><script>${script(l)}</script></body></html>` },
  { name: 'doc.xml', body: (l) => `<?xml version="1.0"?><x:html xmlns:x="http://www.w3.org/1999/xhtml"><x:script>${script(l)}</x:script></x:html>` },
  { name: 'style.css', body: (l, probe) => `#${probe}{color:rgb(1, 2, 3);background-image:url("/ping?${encodeURIComponent(l)}")}` },
  { name: 'css-as.jpg', body: (l, probe) => `#${probe}{color:rgb(1, 2, 3);background-image:url("/ping?${encodeURIComponent(l)}")}`, contentType: 'text/css' },
  // The smallest valid WebAssembly module: WebAssembly.compileStreaming accepts only application/wasm.
  { name: 'module.wasm', body: () => WASM_MODULE },
];

describe.skipIf(!haveBrowser)(SUITE, () => {
  let browser: { context: BrowserContext; close: () => Promise<void> };
  let server: Awaited<ReturnType<typeof listen>>;
  let folder: Awaited<ReturnType<typeof tempDir>>;
  const pings: string[] = [];
  let page = '';

  beforeAll(async () => {
    folder = await tempDir('serving-browser');
    const local = new LocalStorage({ root: folder.dir, baseUrl: '/local', warnOnEphemeralDisk: false });
    const memory = new MemoryStorage({ baseUrl: '/mem' });
    const handlers: Array<[string, MediaStorage, MediaRequestHandler]> = [
      ['local', local, local.handler()],
      ['mem', memory, memory.handler()],
    ];
    const tags: string[] = [];
    const wasm: string[] = [];
    for (const [prefix, storage] of handlers) {
      await storage.save('ok.png', makePng(4, 4));
      tags.push(`<img class="control" src="/${prefix}/ok.png" alt="">`);
      for (const [i, upload] of UPLOADS.entries()) {
        const label = `${prefix}/${upload.name}`;
        const probe = `probe-${prefix}-${i}`;
        const key = `ct/${upload.name}`;
        await storage.save(key, upload.body(label, probe), upload.contentType ? { contentType: upload.contentType } : {});
        const url = `/${prefix}/${key}`;
        tags.push(
          `<div id="${probe}" class="probe">${label}</div>`,
          `<script src="${url}"></script>`,
          `<script type="module" src="${url}"></script>`,
          `<link rel="stylesheet" href="${url}">`,
          `<iframe src="${url}"></iframe>`,
          `<object data="${url}"></object>`,
        );
        if (upload.name.endsWith('.wasm')) wasm.push(url);
      }
    }
    // The app's own script and stylesheet, from 'self': they show the page's mechanisms work.
    const appJs = `window.__control=true;window.__wasm=Promise.all(${JSON.stringify(['/app.wasm', ...wasm])}.map(function(u){return WebAssembly.compileStreaming(fetch(u)).then(function(){new Image().src='/ping?'+encodeURIComponent('wasm '+u);return 'compiled'},function(e){return String(e)})}));`;
    page = `<!doctype html><html><head><meta charset="utf-8"><title>uploads</title><script src="/app.js"></script><link rel="stylesheet" href="/app.css"></head><body><div id="control">control</div>${tags.join('\n')}</body></html>`;

    server = await listen((req: IncomingMessage, res: ServerResponse) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const send = (type: string, body: string | Buffer): void => {
        res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store', 'Content-Security-Policy': PAGE_CSP });
        res.end(body);
      };
      if (url.pathname === '/') return send('text/html; charset=utf-8', page);
      if (url.pathname === '/app.js') return send('text/javascript', appJs);
      if (url.pathname === '/app.css') return send('text/css', '#control{color:rgb(4, 5, 6)}');
      if (url.pathname === '/app.wasm') return send('application/wasm', WASM_MODULE);
      if (url.pathname === '/ping') {
        pings.push(decodeURIComponent(url.search.slice(1)));
        res.writeHead(204);
        return res.end();
      }
      for (const [prefix, , handler] of handlers) if (url.pathname.startsWith(`/${prefix}/`)) return handler(req, res);
      res.writeHead(404);
      res.end();
    });
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await folder?.remove();
  });

  it('runs no uploaded script, applies no uploaded stylesheet, compiles no uploaded wasm, from the local and memory handlers', async () => {
    const tab = await browser.context.newPage();
    await tab.goto(`${server.url}/`, { waitUntil: 'load' });
    // Beacons of scripts that ran in frames or objects may trail the load event.
    await tab.waitForTimeout(1500);
    const seen = await tab.evaluate(async () => {
      const w = window as unknown as { __pwned?: string[]; __control?: boolean; __wasm?: Promise<string[]> };
      return {
        pwned: w.__pwned ?? [],
        control: w.__control === true,
        controlColor: getComputedStyle(document.getElementById('control')!).color,
        styled: Array.from(document.querySelectorAll('.probe'))
          .filter((el) => getComputedStyle(el).color === 'rgb(1, 2, 3)')
          .map((el) => el.textContent),
        wasm: await w.__wasm,
        images: Array.from(document.querySelectorAll<HTMLImageElement>('img.control')).map((img) => img.naturalWidth),
      };
    });
    await tab.close();
    // The mechanisms work: the app's own script and stylesheet ran, inline images from both handlers show.
    const ownWasm = 'wasm /app.wasm';
    expect(pings.filter((p) => p === ownWasm)).toHaveLength(1);
    expect(seen.control).toBe(true);
    expect(seen.controlColor).toBe('rgb(4, 5, 6)');
    expect(seen.images).toEqual([4, 4]);
    // And nothing uploaded ran or applied.
    const beacons = [...new Set(pings)].filter((p) => p !== ownWasm).sort();
    expect({ scriptsThatRan: seen.pwned, beacons, stylesheetsApplied: seen.styled }).toEqual({ scriptsThatRan: [], beacons: [], stylesheetsApplied: [] });
    // The app's own module compiles; the uploaded ones are refused for their Content-Type.
    const [own, ...uploaded] = seen.wasm!;
    expect(own).toBe('compiled');
    expect(uploaded).toHaveLength(2);
    for (const outcome of uploaded) expect(outcome).toMatch(/TypeError.*(MIME|Content-Type|application\/wasm)/i);
  }, 60_000);
});
